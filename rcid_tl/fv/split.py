"""Held-out trials: each relation's sampled trials split, by a seeded permutation, into a selection split (everything
that chooses — mean activations, head ranking, k, layer, α) and a disjoint evaluation split that is only scored."""

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rcid_tl.artifacts import write_json
from rcid_tl.checks import check_count
from rcid_tl.errors import InputError
from rcid_tl.fv.trials import TrialSnapshot


@dataclass(frozen=True)
class TrialSplit:
    """Trials per relation in the selection and evaluation splits (None: half, rounded down, and the rest)."""

    n_select: int | None = None
    n_eval: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_count(self.n_select, "--n-select")
        check_count(self.n_eval, "--n-eval")
        check_count(self.seed, "--split-seed", minimum=0)

    def sizes(self, n_trials: int) -> tuple[int, int]:
        """(selection, evaluation) sizes for a relation of `n_trials` trials; refused when they do not fit."""
        n_select = self.n_select if self.n_select is not None else n_trials // 2
        n_eval = self.n_eval if self.n_eval is not None else n_trials - n_select
        if n_select < 1 or n_eval < 1 or n_select + n_eval > n_trials:
            raise InputError(f"a held-out split needs ≥ 1 selection and ≥ 1 evaluation trial within --n-trials "
                             f"{n_trials}; got --n-select {n_select} and --n-eval {n_eval}")
        return n_select, n_eval

    def resolve(self, snapshot: TrialSnapshot) -> "SplitIndices":
        """Each relation's trial indices, permuted by a stream seeded by (seed, relation) so that a relation's split
        does not depend on which other relations were sampled."""
        by_qid = {}
        for qid in snapshot.qids:
            indices = [t.index for t in snapshot.of(qid)]
            n_select, n_eval = self.sizes(len(indices))
            order = random.Random(f"fv-split:{self.seed}:{qid}").sample(indices, len(indices))
            by_qid[qid] = (tuple(sorted(order[:n_select])), tuple(sorted(order[n_select:n_select + n_eval])))
        return SplitIndices(self.seed, by_qid)


@dataclass(frozen=True)
class SplitIndices:
    """Per relation: (selection trial indices, evaluation trial indices), disjoint."""

    seed: int
    by_qid: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]]

    def __post_init__(self) -> None:
        for qid, (select, held) in self.by_qid.items():
            if set(select) & set(held):
                raise InputError(f"the selection and evaluation trials of {qid!r} overlap")

    def selection(self, snapshot: TrialSnapshot) -> TrialSnapshot:
        return subset(snapshot, {q: s for q, (s, _) in self.by_qid.items()})

    def evaluation(self, snapshot: TrialSnapshot) -> TrialSnapshot:
        return subset(snapshot, {q: e for q, (_, e) in self.by_qid.items()})

    def to_json(self) -> dict:
        return {"seed": self.seed, "by_qid": {q: {"selection": list(s), "evaluation": list(e)}
                                              for q, (s, e) in self.by_qid.items()}}

    def save(self, path: Path) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> "SplitIndices":
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(payload["seed"], {q: (tuple(v["selection"]), tuple(v["evaluation"]))
                                         for q, v in payload["by_qid"].items()})
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path} is not a trial_split.json ({err}); re-run `rcid-tl fv cie`") from None


def subset(snapshot: TrialSnapshot, indices: Mapping[str, Sequence[int]]) -> TrialSnapshot:
    """The snapshot restricted to the named trials of the named relations (trials keep their own indices)."""
    keep = {q: set(ix) for q, ix in indices.items()}
    trials = tuple(t for t in snapshot.trials if t.index in keep.get(t.q_id, ()))
    meta = {**snapshot.meta, "n_trials_by_qid": {q: sum(t.q_id == q for t in trials) for q in keep}}
    return TrialSnapshot(snapshot.config, meta, trials)


NOTHING_HELD_OUT = ("this run's function vectors were built from all of its trials (no trial_split.json); re-run "
                    "`rcid-tl fv cie` so that trials are held out")


def check_held_out(split: SplitIndices, built_from: SplitIndices | None, qids: Sequence[str]) -> None:
    """Refuse an evaluation split that includes trials the function vectors were built from."""
    if built_from is None:
        raise InputError(NOTHING_HELD_OUT)
    for qid in qids:
        seen = sorted(set(split.by_qid[qid][1]) & set(built_from.by_qid.get(qid, ((), ()))[0]))
        if seen:
            raise InputError(f"evaluation trial(s) {seen} of {qid!r} were used to build the function vectors; "
                             "choose --n-select/--n-eval/--split-seed that keep them out")


def shown_as_demos(snapshot: TrialSnapshot, split: SplitIndices) -> dict[str, tuple[int, ...]]:
    """Per relation, the evaluation trials whose (query, answer) pair appears as a demonstration in some selection
    trial's prompt. The evaluation prompts are never run while choosing, but such a pair did shape the mean
    activations the FV is built from (Todd et al. avoid this by splitting the word pairs instead of the trials)."""
    out = {}
    for qid, (select_ix, eval_ix) in split.by_qid.items():
        trials = {t.index: t for t in snapshot.of(qid)}
        shown = {pair for i in select_ix for pair in trials[i].demos}
        out[qid] = tuple(i for i in eval_ix if (trials[i].query, trials[i].target_str) in shown)
    return out


def demo_overlap(snapshot: TrialSnapshot, split: SplitIndices) -> dict[str, int]:
    """How many evaluation trials per relation `shown_as_demos` finds."""
    return {q: len(ix) for q, ix in shown_as_demos(snapshot, split).items()}
