"""The study's five experiments, by subject. Each keeps the number its result files carry (`exp1.json`, the
"experiment" field of the JSON), so results saved before the names existed still render."""

from enum import IntEnum


class Experiment(IntEnum):
    PRESERVATION = 1  # do students as accurate as the teacher share its circuit? (head-checkpoint consistency)
    COMPARISON = 2  # the four methods over seeds, the factor decomposition, the Greater-Than runs
    ROBUSTNESS = 3  # causal consistency vs out-of-distribution robustness
    RETENTION = 4  # which of the teacher's head classes and circuit heads a student retains
    PURITY = 5  # information purity: linear probes on the residual stream

    @property
    def title(self) -> str:
        return TITLES[self]


TITLES = {Experiment.PRESERVATION: "Circuit preservation",
          Experiment.COMPARISON: "Four methods and the factor decomposition",
          Experiment.ROBUSTNESS: "Consistency vs out-of-distribution robustness",
          Experiment.RETENTION: "Component retention", Experiment.PURITY: "Information purity"}
