"""Relation trials, sampled once: clean few-shot prompt, the same prompt with the demo
labels shuffled (Todd et al. 2024's corrupted prompt), the query-only 0-shot prompt, and the target's first token.

Strings become token ids exactly once, here; `sampled_trials.json` stores both, and every later step reuses it.
"""

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from rcid_tl import __version__
from rcid_tl.artifacts import write_json
from rcid_tl.errors import InputError, parse_choice
from rcid_tl.fv.relations import Pair, RelationSet


class PromptFormat(str, Enum):
    """`qa`: Todd et al.'s template ("Q: x\\nA: y\\n\\n..."); `colon`: the world corpus's ("x: y\\n...")."""

    QA = "qa"
    COLON = "colon"


# (demo "x → y" line, query line without answer, separator between lines); the answer follows the query after " "
_TEMPLATES: dict[PromptFormat, tuple[str, str, str]] = {
    PromptFormat.QA: ("Q: {x}\nA: {y}", "Q: {x}\nA:", "\n\n"),
    PromptFormat.COLON: ("{x}: {y}", "{x}:", "\n"),
}


def parse_format(value: str) -> PromptFormat:
    return parse_choice(PromptFormat, value, "prompt format")


def prompt_text(fmt: PromptFormat, demos: list[Pair] | tuple[Pair, ...], query: str) -> str:
    demo, ask, sep = _TEMPLATES[fmt]
    return sep.join([*(demo.format(x=x, y=y) for x, y in demos), ask.format(x=query)])


@dataclass(frozen=True)
class SamplingConfig:
    """N_TRIALS_PER_Q, N_DEMOS and the seed; fail-fast unless `allow_drop`."""

    n_trials_per_q: int = 16
    n_demos: int = 5
    seed: int = 42
    prompt_format: PromptFormat = PromptFormat.QA
    prepend_bos: bool = True
    allow_drop: bool = False
    # skip pairs whose answer's first token is whitespace only (a bare word-start piece such as "▁" on small
    # SentencePiece vocabularies): predicting it says nothing about which word follows
    skip_blank_targets: bool = False
    # draw demonstrations only from pairs that are no trial's query, so that no query — held-out ones included — is
    # ever shown as a demonstration (Todd et al. split the word pairs the same way); needs n_trials + n_demos pairs
    demos_exclude_queries: bool = False

    def __post_init__(self) -> None:
        if self.n_trials_per_q < 1:
            raise InputError(f"--n-trials must be ≥ 1, got {self.n_trials_per_q}")
        if self.n_demos < 1:
            raise InputError(f"--n-demos must be ≥ 1 (the corrupted prompt shuffles demo labels), got {self.n_demos}")


@dataclass(frozen=True)
class Trial:
    """One trial of one relation; `*_ids` are exactly what the model sees (BOS included when used)."""

    q_id: str
    index: int
    query: str
    target_str: str
    target_first_token_id: int
    demos: tuple[Pair, ...]
    corrupted_demos: tuple[Pair, ...]
    clean_prompt_str: str
    corrupted_prompt_str: str
    zero_shot_prompt_str: str
    clean_ids: tuple[int, ...]
    corrupted_ids: tuple[int, ...]
    zero_shot_ids: tuple[int, ...]

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "Trial":
        tuples = {k: tuple(tuple(p) if isinstance(p, list) else p for p in row[k])
                  for k in ("demos", "corrupted_demos", "clean_ids", "corrupted_ids", "zero_shot_ids")}
        return cls(**{**row, **tuples})


@dataclass(frozen=True)
class TrialSnapshot:
    """The canonical trial snapshot: config, tokenizer policy, what was dropped, and every trial."""

    config: dict[str, Any]
    meta: dict[str, Any]
    trials: tuple[Trial, ...] = field(repr=False)

    @property
    def qids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.q_id for t in self.trials))

    def of(self, qid: str) -> tuple[Trial, ...]:
        return tuple(t for t in self.trials if t.q_id == qid)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "meta": self.meta, "trials": [asdict(t) for t in self.trials]}

    def digest(self) -> str:
        """sha256 of the trials (ids included): names the data snapshot in AIE ids and eval metadata."""
        text = json.dumps([asdict(t) for t in self.trials], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def save(self, path: Path) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> "TrialSnapshot":
        if not Path(path).is_file():
            raise InputError(f"sampled trials {path} do not exist; run `rcid-tl fv cie` first")
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        try:
            trials = tuple(Trial.from_json(r) for r in payload["trials"])
            return cls(payload["config"], payload["meta"], trials)
        except (KeyError, TypeError) as err:
            raise InputError(f"{path} is not a sampled_trials.json snapshot ({err})") from None

    def check_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Refuse a model whose tokenizer would not give these ids (the snapshot's ids would be meaningless)."""
        first = self.trials[0]
        ids = _encode(tokenizer, first.clean_prompt_str, self.config["prepend_bos"])
        if tuple(ids) != first.clean_ids:
            raise InputError(f"the sampled trials were tokenised for model {self.meta['model']!r}; this model's "
                             "tokenizer gives different ids. Re-run `rcid-tl fv cie` for this model")


def _encode(tokenizer: PreTrainedTokenizerBase, text: str, prepend_bos: bool) -> list[int]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return [tokenizer.bos_token_id, *ids] if prepend_bos else ids


class _Untokenisable(Exception):
    """A pair this tokenizer cannot represent (unknown tokens, or the answer does not start a new token)."""


def _first_answer_token(tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str, prepend_bos: bool) -> int:
    # Policy (Todd et al. score the answer's first token): the target's first token is the first token of
    # encode(prompt + " " + answer) past encode(prompt), which must be an unchanged prefix of it.
    base = _encode(tokenizer, prompt, prepend_bos)
    full = _encode(tokenizer, f"{prompt} {answer}", prepend_bos)
    if full[: len(base)] != base or len(full) == len(base):
        raise _Untokenisable(f"answer {answer!r} does not start a new token after {prompt[-20:]!r}")
    return full[len(base)]


def _usable(tokenizer: PreTrainedTokenizerBase, pair: Pair) -> bool:
    unk = tokenizer.unk_token_id
    return unk is None or all(unk not in tokenizer.encode(f" {w}", add_special_tokens=False) for w in pair)


def _trial(tokenizer, config: SamplingConfig, qid: str, index: int, query: Pair, demos: list[Pair],
           rng: random.Random, n_ctx: int) -> Trial:
    labels = [y for _, y in demos]
    rng.shuffle(labels)  # Todd et al.: the corrupted prompt keeps inputs and query, with the labels shuffled
    corrupted = [(x, y) for (x, _), y in zip(demos, labels)]
    fmt, bos = config.prompt_format, config.prepend_bos
    texts = (prompt_text(fmt, demos, query[0]), prompt_text(fmt, corrupted, query[0]), prompt_text(fmt, [], query[0]))
    target = _first_answer_token(tokenizer, texts[0], query[1], bos)
    for text in texts[1:]:
        if _first_answer_token(tokenizer, text, query[1], bos) != target:
            raise _Untokenisable(f"answer {query[1]!r} starts with a different token after another prompt")
    if config.skip_blank_targets and not tokenizer.decode([target]).strip():
        raise _Untokenisable(f"answer {query[1]!r} starts with a whitespace-only token")
    ids = [tuple(_encode(tokenizer, t, bos)) for t in texts]
    if max(map(len, ids)) > n_ctx:
        raise _Untokenisable(f"a prompt is {max(map(len, ids))} tokens, over the model's context of {n_ctx}")
    return Trial(qid, index, query[0], query[1], target, tuple(demos), tuple(corrupted), *texts, *ids)


def sample_relation(
    tokenizer: PreTrainedTokenizerBase, config: SamplingConfig, qid: str, pairs: tuple[Pair, ...], n_ctx: int
) -> tuple[list[Trial], str | None]:
    """N trials of one relation with distinct queries, demos drawn from its other pairs; or ([], why) when the
    relation cannot fill its quota."""
    if config.prepend_bos and tokenizer.bos_token_id is None:
        raise InputError("this tokenizer has no BOS token; sample with --no-bos")
    usable = [p for p in dict.fromkeys(pairs) if _usable(tokenizer, p)]
    n_trials, n_demos = config.n_trials_per_q, config.n_demos
    need = n_trials + n_demos if config.demos_exclude_queries else max(n_trials, n_demos + 1)
    if len(usable) < need:
        return [], f"{len(usable)} usable pairs of {len(pairs)}; {need} needed"
    # a per-relation stream: the same relation gets the same trials whatever else is sampled with it
    rng = random.Random(f"fv-trials:{config.seed}:{qid}")
    order = rng.sample(range(len(usable)), len(usable))
    demo_pool = None
    if config.demos_exclude_queries:  # the last pairs of the permutation are demonstrations only, never queries
        n_pool = max(n_demos, (len(usable) - n_trials) // 2)
        demo_pool, order = [usable[i] for i in sorted(order[-n_pool:])], order[:-n_pool]
    trials, failures = [], []
    for q in order:
        if len(trials) == n_trials:
            break
        pool = demo_pool if demo_pool is not None else [p for i, p in enumerate(usable) if i != q]
        try:
            trials.append(_trial(tokenizer, config, qid, len(trials), usable[q], rng.sample(pool, n_demos), rng,
                                 n_ctx))
        except _Untokenisable as why:
            failures.append(str(why))
    if len(trials) < n_trials:
        return [], f"only {len(trials)} of {n_trials} trials ({failures[0] if failures else ''})"
    return trials, None


def sample_trials(
    relations: RelationSet, tokenizer: PreTrainedTokenizerBase, config: SamplingConfig, model_label: str,
    n_ctx: int,
) -> TrialSnapshot:
    """Sample every relation once. Fail-fast: a relation that cannot fill N_TRIALS_PER_Q is an
    InputError unless `allow_drop`, which drops it and records which and why."""
    trials, dropped = [], {}
    for qid, pairs in relations.pairs.items():
        got, why = sample_relation(tokenizer, config, qid, pairs, n_ctx)
        if why is not None:
            if not config.allow_drop:
                raise InputError(f"relation {qid!r} cannot fill {config.n_trials_per_q} trials: {why} "
                                 "(use --allow-drop to drop it)")
            dropped[qid] = why
        trials += got
    if not trials:
        raise InputError("every relation was dropped; nothing to sample")
    cfg = {**asdict(config), "prompt_format": config.prompt_format.value}
    kept = list(dict.fromkeys(t.q_id for t in trials))
    meta = {
        "rcid_tl_version": __version__, "model": model_label, "relations_source": relations.source,
        "requested_qids": list(relations.qids), "qids": kept, "dropped": dropped,
        "n_trials_by_qid": {q: sum(t.q_id == q for t in trials) for q in kept},
        "tokenizer_policy": {"add_special_tokens": False, "prepend_bos": config.prepend_bos,
                             "bos_token_id": tokenizer.bos_token_id,
                             "target": "first token of encode(prompt + ' ' + answer) past encode(prompt)"},
    }
    return TrialSnapshot(cfg, meta, tuple(trials))
