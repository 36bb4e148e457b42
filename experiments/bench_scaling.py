"""The scaling table and figure of `bench_engine.py`: the exact sweep's time and peak memory (resumed rows on direct
forwards, `z` at `end`, noising) against the number of prompts (8 → 512) and the number of sites, on the embedded
teachers (every head) and the GPT-2-small shape (one head per layer, so its 512-prompt point takes minutes, not an
hour), each next to one plain forward of the same prompts and the FLOP bound. Writes
`figures/bench_scaling.{html,json,png}` (the PNG where kaleido is installed). Each point runs its sweep twice, a
warm-up and the measured call whose peak memory is read (`bench_memory.py`); its seconds are the faster of the two.
"""

import time
from pathlib import Path

import plotly.graph_objects as go
from bench_engine import matmul_gflops, one_template, sweep_sites, tight_flops
from bench_engine_parts import plain_forward
from bench_memory import peak_bytes
from plotly.colors import DEFAULT_PLOTLY_COLORS
from plotly.subplots import make_subplots

from rcid_tl.artifacts import write_figure, write_json
from rcid_tl.interventions.write import patch_sites
from rcid_tl.metrics import metric_for

FIGURES = Path(__file__).resolve().parent.parent / "figures"
PROMPTS, QUICK_PROMPTS = (8, 32, 128, 512), (8, 32)
SITES_AT = 8  # prompts of the sites series
# sites: every head of an embedded teacher; one head per layer on the GPT-2-small shape (12 sites)
SWEEP_SITES = {"gpt2-small": "per-layer"}
SITE_SHARES = (8, 4, 2)  # the sites series: 1/8, 1/4 and 1/2 of the sweep's sites (and the prompts series' all)


def _timed_peak(run) -> tuple[float, float]:
    """(seconds, peak MiB): the faster of a warm-up and the measured call, and the measured call's peak."""
    seconds = []

    def timed_run():
        start = time.process_time()  # CPU seconds, like every timing here
        result = run()
        seconds.append(time.process_time() - start)
        return result
    peak = peak_bytes(timed_run) / 2**20  # calls timed_run twice: a warm-up, then the measured call
    return min(seconds), peak


def _point(name: str, model, n: int, count: int, gflops: float) -> dict:
    dataset, batch, end = one_template(model, n)
    metric = metric_for(dataset)
    sites = sweep_sites(model, "z-end", SWEEP_SITES.get(name, "all"), end)
    sites = sites[:: max(1, len(sites) // count)][:count]
    seconds, peak = _timed_peak(lambda: patch_sites(model, batch, sites, metric))
    forward_seconds, forward_peak = _timed_peak(plain_forward(model, batch))
    return {"model": name, "prompts": n, "sites": len(sites), "seconds": seconds, "forward_seconds": forward_seconds,
            "peak_mib": peak, "forward_peak_mib": forward_peak,
            "bound_seconds": tight_flops(model.cfg, sites, batch, end) / gflops / 1e9}


def bench_scaling(models: dict, gflops: float, check_memory=None, quick: bool = False,
                  figures: Path = FIGURES) -> list[dict]:
    """The table, and the figure in `figures`; `check_memory(what, ok, detail)` records a point whose sweep reads
    below its forward."""
    print("\nscaling (z at end, resumed rows on direct forwards; seconds: the faster of two runs; peak MiB: the "
          "resident set's high-water mark above the resident set before the call)")
    print(f"{'model':<12}{'prompts':>7}{'sites':>6}{'sweep s':>9}{'forward s':>10}{'bound s':>9}{'peak MiB':>9}"
          f"{'fwd MiB':>8}  sweep/forward  sweep/bound  peak/forward's")
    points = []
    for name, model in models.items():
        dataset, batch, end = one_template(model, SITES_AT)
        most = len(sweep_sites(model, "z-end", SWEEP_SITES.get(name, "all"), end))
        shares = SITE_SHARES[1:2] if quick else SITE_SHARES
        counts = sorted({max(1, most // k) for k in shares} - {most})
        grid = [(n, most) for n in (QUICK_PROMPTS if quick else PROMPTS)] + [(SITES_AT, c) for c in counts]
        for n, count in grid:
            p = _point(name, model, n, count, gflops)
            points.append(p)
            print(f"{name:<12}{p['prompts']:>7}{p['sites']:>6}{p['seconds']:>9.3f}{p['forward_seconds']:>10.3f}"
                  f"{p['bound_seconds']:>9.3f}{p['peak_mib']:>9.2f}{p['forward_peak_mib']:>8.2f}  "
                  f"{p['seconds'] / p['forward_seconds']:12.1f}×{p['seconds'] / p['bound_seconds']:11.1f}×"
                  f"{p['peak_mib'] / p['forward_peak_mib']:14.1f}×", flush=True)
            if check_memory is not None:  # the sweep runs a forward of the same prompts
                check_memory(f"{name} scaling memory at {n} prompts, {p['sites']} sites",
                             p["peak_mib"] >= p["forward_peak_mib"],
                             f"{p['peak_mib']:.2f} MiB < a plain forward's {p['forward_peak_mib']:.2f}")
    _figure(points, gflops, figures)
    return points


def _figure(points: list[dict], gflops: float, figures: Path) -> None:
    """Time (left) and peak memory (right) against prompts (top) and sites (bottom): a colour per model, a dash per
    quantity (solid: the sweep, dotted: one forward, dashed: the FLOP bound)."""
    titles = ("time vs prompts", "peak memory vs prompts", f"time vs sites ({SITES_AT} prompts)",
              "peak memory vs sites")
    figure = make_subplots(rows=2, cols=2, subplot_titles=titles)
    lines = (("seconds", 1, "sweep", "solid"), ("forward_seconds", 1, "one forward", "dot"),
             ("bound_seconds", 1, "FLOP bound", "dash"), ("peak_mib", 2, "sweep peak", "solid"),
             ("forward_peak_mib", 2, "forward peak", "dot"))
    for i, name in enumerate(sorted({p["model"] for p in points})):
        colour = DEFAULT_PLOTLY_COLORS[i % len(DEFAULT_PLOTLY_COLORS)]
        sites = max(p["sites"] for p in points if p["model"] == name)
        by_n = sorted((p for p in points if p["model"] == name and p["sites"] == sites), key=lambda p: p["prompts"])
        by_s = sorted((p for p in points if p["model"] == name and p["prompts"] == SITES_AT),
                      key=lambda p: p["sites"])
        for row, (series, axis) in enumerate(((by_n, "prompts"), (by_s, "sites")), start=1):
            for key, col, label, dash in lines:
                figure.add_trace(go.Scatter(
                    x=[p[axis] for p in series], y=[p[key] for p in series], name=f"{name} {label}",
                    line={"dash": dash, "color": colour}, legendgroup=name, showlegend=row == 1), row=row, col=col)
    figure.update_xaxes(type="log")
    figure.update_xaxes(title_text="prompts", row=1)
    figure.update_xaxes(title_text="sites", row=2)
    figure.update_yaxes(type="log")
    figure.update_yaxes(title_text="CPU seconds", col=1)
    figure.update_yaxes(title_text="peak MiB (resident, above the start)", col=2)
    figure.update_layout(title=f"exact sweep (z at end): time and peak memory; CPU, one thread, {gflops:.0f} GFLOP/s",
                         height=800)
    written = write_figure(figures / "bench_scaling", figure)
    write_json(figures / "bench_scaling.json", {"gflops": gflops, "points": points})
    print(f"wrote {', '.join(p.name for p in written)} and bench_scaling.json in {figures.name}/")


if __name__ == "__main__":
    import torch

    from rcid_tl.models import load_model
    from rcid_tl.progress import set_progress

    torch.set_num_threads(1)
    set_progress(False)
    bench_scaling({"world-gpt2": load_model("world-gpt2")}, matmul_gflops())  # the GPT-2-small shape: bench_engine
