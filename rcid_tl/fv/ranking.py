"""Head score tables (Todd et al. 2024 §2.2): per-relation CIE rows, AIE = the unweighted mean of CIE over a chosen
relation subset, the deterministic ranking (score descending, then layer, then head ascending), top-k, and `aie_id`."""

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from rcid_tl.artifacts import write_csv
from rcid_tl.errors import InputError, parse_choice
from rcid_tl.fv.cie import RelationCIE
from rcid_tl.hooks.names import Head

CIE_COLUMNS = ("q_id", "layer", "head", "n_trials", "mean_delta_logprob", "mean_delta_p")
AIE_COLUMNS = ("layer", "head", "n_qids", "mean_delta_logprob", "mean_delta_p")


class ScoreKey(str, Enum):
    """Which head score ranks heads; the seed fixes `mean_delta_logprob` as primary."""

    LOGPROB = "mean_delta_logprob"
    PROB = "mean_delta_p"


def parse_score_key(value: str) -> ScoreKey:
    return parse_choice(ScoreKey, value, "score key")


@dataclass(frozen=True)
class HeadScore:
    """One (layer, head)'s score: a relation's CIE (`n` = trials) or an AIE (`n` = relations averaged)."""

    layer: int
    head: int
    n: int
    mean_delta_logprob: float
    mean_delta_p: float

    def score(self, key: ScoreKey) -> float:
        return getattr(self, ScoreKey(key).value)

    @property
    def as_head(self) -> Head:
        return Head(self.layer, self.head)


def ranked(scores: Sequence[HeadScore], key: ScoreKey) -> list[HeadScore]:
    """Score descending; ties broken by layer, then head, ascending, so top-k is deterministic."""
    return sorted(scores, key=lambda s: (-s.score(key), s.layer, s.head))


def top_k(scores: Sequence[HeadScore], key: ScoreKey, k: int) -> list[HeadScore]:
    if not 1 <= k <= len(scores):
        raise InputError(f"k = {k} is out of range; {len(scores)} heads were scored, so k must be 1..{len(scores)}")
    return ranked(scores, key)[:k]


def cie_scores(result: RelationCIE) -> list[HeadScore]:
    """A relation's CIE per head: the mean over its trials."""
    lp, p = result.delta_logprob.mean(1), result.delta_p.mean(1)
    return [HeadScore(h.layer, h.head, result.n_trials, float(lp[i]), float(p[i])) for i, h in enumerate(result.heads)]


def aie_scores(cie: dict[str, list[HeadScore]], qids: Sequence[str]) -> list[HeadScore]:
    """AIE_Q*(ℓ, h) = mean over q in Q* of CIE(q, ℓ, h), every relation weighted equally (Todd et al.'s AIE)."""
    unknown = [q for q in qids if q not in cie]
    if unknown:
        raise InputError(f"unknown q_id {unknown[0]!r}; the CIE table has: {', '.join(cie)}")
    if not qids:
        raise InputError("AIE needs at least one q_id")
    by_head = [{(s.layer, s.head): s for s in cie[q]} for q in qids]
    heads = sorted(by_head[0])
    if any(sorted(table) != heads for table in by_head):
        raise InputError("the selected relations were scored on different head sets; AIE needs the same heads")
    n = len(qids)
    return [HeadScore(layer, head, n, sum(t[layer, head].mean_delta_logprob for t in by_head) / n,
                      sum(t[layer, head].mean_delta_p for t in by_head) / n) for layer, head in heads]


def write_cie_csv(path: Path, cie: dict[str, list[HeadScore]], key: ScoreKey) -> Path:
    rows = [(q, s.layer, s.head, s.n, s.mean_delta_logprob, s.mean_delta_p)
            for q, scores in cie.items() for s in ranked(scores, key)]
    return write_csv(path, CIE_COLUMNS, rows)


def write_aie_csv(path: Path, scores: list[HeadScore], key: ScoreKey) -> Path:
    rows = [(s.layer, s.head, s.n, s.mean_delta_logprob, s.mean_delta_p) for s in ranked(scores, key)]
    return write_csv(path, AIE_COLUMNS, rows)


def read_cie_csv(path: Path) -> dict[str, list[HeadScore]]:
    """`cie_scores.csv` back into per-relation score lists (floats round-trip exactly: written with repr)."""
    if not path.is_file():
        raise InputError(f"CIE table {path} does not exist; run `rcid-tl fv cie` first")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != CIE_COLUMNS:
            raise InputError(f"{path} does not have the CIE columns {', '.join(CIE_COLUMNS)}")
        table: dict[str, list[HeadScore]] = {}
        for row in reader:
            table.setdefault(row["q_id"], []).append(HeadScore(
                int(row["layer"]), int(row["head"]), int(row["n_trials"]), float(row["mean_delta_logprob"]),
                float(row["mean_delta_p"])))
    return table


def aie_id(qids: Sequence[str], key: ScoreKey, k: int, snapshot_digest: str, model: str) -> str:
    """A short stable id for an AIE package: hash of the sorted subset and the key hyper-parameters (§4.1)."""
    payload = {"selected_qids": sorted(qids), "score_key": ScoreKey(key).value, "k": k,
               "sampled_trials_sha256": snapshot_digest, "model": model}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def heads_json(scores: Sequence[HeadScore], key: ScoreKey) -> list[dict]:
    return [{"layer": s.layer, "head": s.head, "score": s.score(key), "mean_delta_logprob": s.mean_delta_logprob,
             "mean_delta_p": s.mean_delta_p} for s in scores]
