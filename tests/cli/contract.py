"""The result-file contract of the README ("Result JSON"), and an independent recomputation of recorded numbers from
the token ids a result file holds, with a fresh plain-`transformers` load of the model."""

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from rcid_tl import __version__
from tests import hf_reference as ref

HEADER = {"rcid_tl_version", "model", "task", "seed", "metric", "config", "task_config", "examples", "metric_clean",
          "metric_corrupt"}
EXAMPLE = {"clean_ids", "corrupt_ids", "answer_pos", "correct_id", "wrong_id", "positions", "modified", "template",
           "clean_text", "corrupt_text"}
TASK_EXTRAS = {"ioi": {"order"}, "greater-than": {"yy"}}  # task-specific fields each example also carries
PATCH = HEADER | {"kind", "direction", "effects"}
EFFECT = {"layer", "site", "position", "per_example", "mean"}
KNOCKOUT = HEADER | {"kind", "method", "ablations", "n_layers", "n_heads"}  # + reference_distribution (mean, resample)
ABLATION = {"heads", "positions", "metric", "delta", "mean"}


def load_checked(out: Path, kind: str) -> dict:
    """The result JSON in `out`, after checking its keys and files against the contract."""
    payload = json.loads((out / f"{kind}.json").read_text())
    if kind == "patch":
        assert set(payload) == PATCH
    else:
        assert set(payload) == KNOCKOUT | ({"reference_distribution"} if payload["method"] != "zero" else set())
    assert payload["rcid_tl_version"] == __version__
    extras = next((v for k, v in TASK_EXTRAS.items() if payload["task"] == k), set())
    n = len(payload["examples"])
    assert n == len(payload["metric_clean"]) == len(payload["metric_corrupt"]) > 0
    for example in payload["examples"]:
        assert set(example) == EXAMPLE | extras
        assert len(example["clean_ids"]) == len(example["corrupt_ids"]) == example["answer_pos"] + 1
        assert set(example["modified"]) == set(example["positions"])
    for entry in payload["effects"] if kind == "patch" else payload["ablations"]:
        if kind == "patch":
            keys = EFFECT | ({"head"} if entry["site"] == "z" else set())
        else:
            keys = ABLATION
        assert set(entry) == keys
        values = entry["per_example"] if kind == "patch" else entry["delta"]
        assert len(values) == n and abs(sum(values) / n - entry["mean"]) < 1e-6
    assert (out / f"{kind}.csv").read_text().count("\n") == 1 + n * len(payload.get("effects") or payload["ablations"])
    assert "<html" in (out / f"{kind}.html").read_text()[:2000].lower()
    return payload


def _tensors(payload: dict, example: int):
    e = payload["examples"][example]
    as_row = lambda x: torch.tensor([x])  # noqa: E731
    return (as_row(e["clean_ids"]), as_row(e["corrupt_ids"]), as_row(e["answer_pos"]), as_row(e["correct_id"]),
            as_row(e["wrong_id"]), e["positions"])


def recompute_patch_delta(model_dir: Path, payload: dict, effect: dict, example: int) -> float:
    """Δ = logit diff(clean) − logit diff(patched) for one recorded (site, example), from its recorded ids only."""
    hf = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    clean, corrupt, answer_pos, correct, wrong, positions = _tensors(payload, example)
    noising = payload["direction"] == "noising"
    source, target = (corrupt, clean) if noising else (clean, corrupt)
    pos = torch.tensor([positions[effect["position"]]])
    _, acts = ref.record(hf, source, effect["site"], effect["layer"])
    value = acts[0, pos] if "head" not in effect else acts[0, pos, effect["head"]]
    patched = ref.patched_logits(hf, target, effect["site"], effect["layer"], pos, value, effect.get("head"))
    with torch.no_grad():
        base = ref.logit_diff(hf(clean).logits, answer_pos, correct, wrong)
    return float(base - ref.logit_diff(patched, answer_pos, correct, wrong))


def recompute_zero_ablation(model_dir: Path, payload: dict, heads: list[str], example: int) -> float:
    """The logit difference with `heads` zeroed (their output-projection slices), from the recorded ids only."""
    hf = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    for head in heads:
        layer, index = map(int, head.split("."))
        ref.zero_head_weights(hf, layer, index)
    clean, _, answer_pos, correct, wrong, _ = _tensors(payload, example)
    with torch.no_grad():
        return float(ref.logit_diff(hf(clean).logits, answer_pos, correct, wrong))
