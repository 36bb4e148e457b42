"""The scaling table and figure of `bench_engine.py`: the exact sweep's time and peak memory (resumed rows on direct
forwards, `z` at `end`, noising) against the number of prompts and the number of sites, on the embedded world-gpt2
and the GPT-2-small shape, each next to one plain forward of the same prompts and the FLOP bound. Writes
`figures/bench_scaling.{html,json}`. One run per point (the table's other rows interleave repeats; these are long).
"""

from pathlib import Path

import plotly.graph_objects as go
from bench_engine import matmul_gflops, one_template, sweep_sites, tight_flops
from bench_engine_parts import min_seconds, peak_bytes, plain_forward
from plotly.subplots import make_subplots

from rcid_tl.artifacts import write_figure, write_json
from rcid_tl.interventions.write import patch_sites
from rcid_tl.metrics import metric_for

FIGURES = Path(__file__).resolve().parent.parent / "figures"
# (model, prompts, sites): every head of world-gpt2 (24); one head per layer on the GPT-2-small shape (12), whose
# 128- and 512-prompt points would take most of an hour on one shared core
PROMPTS = {"world-gpt2": (8, 32, 128, 512), "gpt2-small": (8, 32, 64)}
SITE_COUNTS = {"world-gpt2": (3, 6, 12, 24), "gpt2-small": (3, 6, 12)}
SITES_AT = 8  # prompts of the sites series
SWEEP_SITES = {"world-gpt2": "all", "gpt2-small": "per-layer"}


def _point(model, n: int, count: int, gflops: float) -> dict:
    dataset, batch, end = one_template(model, n)
    metric = metric_for(dataset)
    sites = sweep_sites(model, "z-end", SWEEP_SITES[_key(model)], end)
    sites = sites[:: max(1, len(sites) // count)][:count]
    run = lambda: patch_sites(model, batch, sites, metric)  # noqa: E731
    return {"prompts": n, "sites": len(sites), "seconds": min_seconds(run, 1),
            "forward_seconds": min_seconds(plain_forward(model, batch), 2),
            "peak_mib": peak_bytes(run) / 2**20, "forward_peak_mib": peak_bytes(plain_forward(model, batch)) / 2**20,
            "bound_seconds": tight_flops(model.cfg, sites, batch, end) / gflops / 1e9}


def _key(model) -> str:
    return "gpt2-small" if model.cfg.d_model == 768 else "world-gpt2"


def bench_scaling(models: dict, gflops: float) -> list[dict]:
    print("\nscaling (z at end, resumed rows on direct forwards; one run per point; peak MiB from torch's profiler)")
    print(f"{'model':<11}{'prompts':>8}{'sites':>6}{'sweep s':>9}{'forward s':>10}{'bound s':>9}{'peak MiB':>9}"
          f"{'fwd MiB':>8}  sweep/forward  sweep/bound")
    points = []
    for name in [m for m in ("world-gpt2", "gpt2-small") if m in models]:
        model, most = models[name], max(SITE_COUNTS[name])
        grid = [(n, most) for n in PROMPTS[name]] + [(SITES_AT, c) for c in SITE_COUNTS[name] if c != most]
        for n, count in grid:
            p = {"model": name, **_point(model, n, count, gflops)}
            points.append(p)
            print(f"{name:<11}{p['prompts']:>8}{p['sites']:>6}{p['seconds']:>9.3f}{p['forward_seconds']:>10.3f}"
                  f"{p['bound_seconds']:>9.3f}{p['peak_mib']:>9.1f}{p['forward_peak_mib']:>8.1f}  "
                  f"{p['seconds'] / p['forward_seconds']:12.1f}×{p['seconds'] / p['bound_seconds']:11.1f}×",
                  flush=True)
    _figure(points, gflops)
    return points


def _figure(points: list[dict], gflops: float) -> None:
    figure = make_subplots(rows=2, cols=2, subplot_titles=("time vs prompts", "peak memory vs prompts",
                                                           f"time vs sites ({SITES_AT} prompts)", "peak memory vs sites"))
    for name in sorted({p["model"] for p in points}):
        sites = max(p["sites"] for p in points if p["model"] == name)
        by_n = sorted((p for p in points if p["model"] == name and p["sites"] == sites), key=lambda p: p["prompts"])
        by_s = sorted((p for p in points if p["model"] == name and p["prompts"] == SITES_AT),
                      key=lambda p: p["sites"])
        for col, (series, axis) in enumerate(((by_n, "prompts"), (by_s, "sites"))):
            x = [p[axis] for p in series]
            figure.add_trace(go.Scatter(x=x, y=[p["seconds"] for p in series], name=f"{name} sweep",
                                        legendgroup=name), row=1 + col, col=1)
            figure.add_trace(go.Scatter(x=x, y=[p["forward_seconds"] for p in series], name=f"{name} one forward",
                                        line={"dash": "dot"}, legendgroup=name), row=1 + col, col=1)
            figure.add_trace(go.Scatter(x=x, y=[p["bound_seconds"] for p in series], name=f"{name} FLOP bound",
                                        line={"dash": "dash"}, legendgroup=name), row=1 + col, col=1)
            figure.add_trace(go.Scatter(x=x, y=[p["peak_mib"] for p in series], name=f"{name} sweep peak",
                                        legendgroup=name), row=1 + col, col=2)
            figure.add_trace(go.Scatter(x=x, y=[p["forward_peak_mib"] for p in series],
                                        name=f"{name} forward peak", line={"dash": "dot"}, legendgroup=name),
                             row=1 + col, col=2)
    figure.update_xaxes(type="log")
    figure.update_yaxes(type="log")
    figure.update_yaxes(title_text="seconds", col=1)
    figure.update_yaxes(title_text="MiB", col=2)
    figure.update_layout(title=f"exact sweep (z at end): time and peak memory; CPU, one thread, {gflops:.0f} GFLOP/s")
    write_figure(FIGURES / "bench_scaling", figure)
    write_json(FIGURES / "bench_scaling.json", {"gflops": gflops, "points": points})


if __name__ == "__main__":
    import torch

    from rcid_tl.models import load_model
    from rcid_tl.progress import set_progress

    torch.set_num_threads(1)
    set_progress(False)
    bench_scaling({"world-gpt2": load_model("world-gpt2")}, matmul_gflops())
