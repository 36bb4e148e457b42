"""GSM8K-format problems (JSONL rows with "question" and "answer" = worked lines + "#### N") as CoT examples.

Reads a local JSONL file through `datasets.load_dataset("json", ...)`, or the hub dataset `openai/gsm8k` (config
"main") for users with a network. The segments match the world task: prompt = "Q: question A:", reasoning = the
answer's lines before "####" (calculator annotations "<<48/2=24>>" removed) + "The answer is", answer = N.
"""

import re
from pathlib import Path

from rcid_tl.errors import InputError
from rcid_tl.world.cot import CoTExample

GSM8K_HUB_ID = "openai/gsm8k"
_CALCULATOR = re.compile(r"<<[^>]*>>")


def gsm8k_example(question: str, answer: str) -> CoTExample:
    """One GSM8K row as a CoTExample; an answer without "#### N" is an InputError naming it."""
    work, sep, final = answer.rpartition("####")
    number = final.strip().replace(",", "")
    if not sep or not re.fullmatch(r"-?\d*\.?\d+", number):
        raise InputError(f"GSM8K answer must end with '#### <number>', got {answer[-60:]!r}")
    lines = [ln.strip() for ln in _CALCULATOR.sub("", work).splitlines() if ln.strip()]
    reasoning = " ".join(lines)
    return CoTExample(prompt=f"Q: {question.strip()} A:", reasoning=f" {reasoning} The answer is".replace("  ", " "),
                      answer=number, n_steps=len(lines))


def load_gsm8k(source: str | Path = GSM8K_HUB_ID, split: str = "test", n: int | None = None) -> list[CoTExample]:
    """The first `n` (default all) problems of a local GSM8K-format JSONL file, or of `split` of the hub dataset.

    `source`: a path to a .jsonl file (the `split` argument is then ignored) or the hub id `openai/gsm8k`."""
    from datasets import load_dataset  # heavy import, only when GSM8K is used

    if n is not None and n < 0:
        raise InputError(f"number of GSM8K problems must be >= 0, got {n}")

    path = Path(source).expanduser()
    if path.is_file():
        rows = load_dataset("json", data_files=str(path), split="train")
    elif str(source) == GSM8K_HUB_ID:
        rows = load_dataset(GSM8K_HUB_ID, "main", split=split)
    else:
        raise InputError(f"GSM8K source {str(source)!r} is neither a JSONL file nor the hub id {GSM8K_HUB_ID!r}")
    missing = {"question", "answer"} - set(rows.column_names)
    if missing:
        raise InputError(f"GSM8K file {str(source)!r} lacks column(s) {sorted(missing)}; needs question and answer")
    if n is not None:
        rows = rows.select(range(min(n, len(rows))))
    return [gsm8k_example(row["question"], row["answer"]) for row in rows]
