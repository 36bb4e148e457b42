"""`rcid-tl models`: the embedded models with their size, architecture, measured scores and IOI circuit."""

import json

from rich.console import Console
from rich.table import Table


def models() -> None:
    """List the embedded models, usable by name.

    List the models shipped with the package (usable by name in every --model/--teacher option).

    Example: rcid-tl models
    """
    from rcid_tl.models.embedded import embedded_names, embedded_path

    # compact, borderless, names never cut: readable at 80 columns (wider terminals just get more room)
    table = Table(box=None, pad_edge=False, padding=(0, 1), collapse_padding=True, header_style="bold")
    table.add_column("name", no_wrap=True)
    for header in ("shape", "params", "IOI acc/ld", "GT pd", "rel 5/0", "ppl", "circuit"):  # the name says the arch
        table.add_column(header, no_wrap=True)
    for name in embedded_names():
        path = embedded_path(name)
        config = json.loads((path / "config.json").read_text())
        record = json.loads((path / "training.json").read_text()) if (path / "training.json").is_file() else {}
        scores = record.get("scores", {})
        circuit = json.loads((path / "circuit.json").read_text()) if (path / "circuit.json").is_file() else {}
        layers = config.get("n_layer", config.get("num_hidden_layers"))
        width = config.get("n_embd", config.get("hidden_size"))
        heads = config.get("n_head", config.get("num_attention_heads"))
        kv = config.get("num_key_value_heads")
        table.add_row(
            name, f"{layers}×{width},{heads}" + (f" kv{kv}" if kv else ""),
            f"{record.get('n_params', 0) / 1e6:.2f}M", _pair(scores, "ioi_acc", "ioi_logit_diff"),
            _one(scores, "gt_prob_diff"), _pair(scores, "relation_5shot_acc", "relation_0shot_acc"),
            _one(scores, "val_perplexity"), _circuit(circuit),
        )
    Console().print(table)
    Console().print("shape: layers×d_model,heads (kv: key/value heads); IOI acc/ld: accuracy/logit difference; GT pd: "
                    "Greater-Than probability difference; rel 5/0: relation accuracy 5-shot/0-shot; ppl: validation "
                    "perplexity; circuit: heads in the IOI circuit and the change of the IOI logit difference when they are "
                    "mean-ablated (heads and criteria in circuit.json)")


def _one(scores: dict, key: str, digits: int = 2) -> str:
    return f"{scores[key]:.{digits}f}" if key in scores else "-"


def _pair(scores: dict, a: str, b: str) -> str:
    return f"{_one(scores, a)}/{_one(scores, b)}"


def _circuit(circuit: dict) -> str:
    if not circuit.get("circuit"):
        return "-"
    return f"{len(circuit['circuit'])}h {circuit['circuit_effects']['ioi']:+.0%}"
