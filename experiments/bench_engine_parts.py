"""Pieces of `bench_engine.py`: the peer libraries' sweeps (nnsight's batched invokes, pyvene's interventions) and
the engine's ablation (batching only, + lower-layer skip, + earlier-position skip, + join at z, + rows that change
nothing read, not run). Imported by bench_engine.py, which
prints every table in one process; peak memory is `bench_memory.peak_bytes`.
"""

import contextlib
from unittest import mock

import torch

from rcid_tl.hooks.names import Site
from rcid_tl.interventions import direct, engine, write
from rcid_tl.interventions.write import Direction, Engine, PatchSite, patch_sites


@contextlib.contextmanager
def bridge_only():
    """Every forward through the bridge's modules and hook points (the engine before direct forwards)."""
    direct.enabled = False
    try:
        yield
    finally:
        direct.enabled = True


@contextlib.contextmanager
def every_row():
    """Resumed sweeps run every row, those whose patch changes nothing too (the engine before it read them)."""
    write.skip_unchanged = False
    try:
        yield
    finally:
        write.skip_unchanged = True


def hf_copy(model):
    """The bridge's HF model rebuilt as a plain HF model (the bridge replaced its submodules in place): the same
    weights, without `._original_component` in their names."""
    weights = {k.replace("._original_component", ""): v for k, v in model.original_model.state_dict().items()}
    fresh = type(model.original_model)(model.original_model.config).eval()
    missing, _ = fresh.load_state_dict(weights, strict=False)  # the bridge's split q/k/v views are extra keys
    assert not missing, missing
    return fresh


def _layers(hf):
    return hf.transformer.h if hasattr(hf, "transformer") else hf.model.layers


def _attn_out_proj(layer):
    return layer.attn.c_proj if hasattr(layer, "attn") else layer.self_attn.o_proj


def nnsight_sweep(lm, hf, batch, sites: list[PatchSite], metric, d_head: int) -> torch.Tensor:
    """Δ per (site, example) with nnsight: one trace, an invoke for the source run and one per site (nnsight batches
    the invokes into one forward). `z` is the input of the attention's output projection (heads side by side);
    `resid_pre` is the block's input. Noising: the corrupt value into the clean run."""
    rows, answer = torch.arange(len(batch)), batch.answer_pos
    layers, outs, source = _layers(lm), [], {}  # filled inside the trace (names assigned there do not escape it)
    with torch.no_grad():
        clean = metric(hf(batch.clean).logits[rows, answer], batch)
        with lm.trace() as tracer:
            with tracer.invoke({"input_ids": batch.corrupt}):
                for layer in sorted({s.layer for s in sites}):  # a loop: a comprehension's scope hides the trace's
                    module = _attn_out_proj(layers[layer]) if sites[0].site is Site.Z else layers[layer]
                    source[layer] = module.input
            for s in sites:
                pos = batch.position(s.position)
                with tracer.invoke({"input_ids": batch.clean}):
                    if s.site is Site.Z:
                        x, cols = _attn_out_proj(layers[s.layer]).input, slice(s.head * d_head, (s.head + 1) * d_head)
                        x[rows, pos, cols] = source[s.layer][rows, pos, cols]
                    else:
                        x = layers[s.layer].input
                        x[rows, pos] = source[s.layer][rows, pos]
                    outs.append(lm.lm_head.output[rows, answer].save())
    return torch.stack([clean - metric(o, batch) for o in outs])


def pyvene_sweep(hf, batch, sites: list[PatchSite], metric, d_head: int, rows_per_call: int = 512) -> torch.Tensor:
    """Δ per (site, example) with pyvene: one `IntervenableModel` per hook (a `VanillaIntervention` at that layer's
    `head_attention_value_output`, unit `h.pos`, or `block_input`, unit `pos`), and one batched call per chunk of
    sites (`rows_per_call` rows), each (site, example) a row of the base batch with its own unit location. The
    source's values come from one run of the corrupt prompts, passed in as `source_representations` (pyvene's way to
    skip re-running the source for every row). Noising: the corrupt value into the clean run, as `nnsight_sweep`."""
    import pyvene as pv  # deferred: the `bench` extra

    n, z = len(batch), sites[0].site is Site.Z
    rows, answer = torch.arange(n), batch.answer_pos
    component, unit = ("head_attention_value_output", "h.pos") if z else ("block_input", "pos")
    layers, chunk = sorted({s.layer for s in sites}), max(1, rows_per_call // n)
    out = torch.empty(len(sites), n)
    with torch.no_grad():
        clean = metric(hf(batch.clean).logits[rows, answer], batch)
        source = _source_values(pv, hf, batch, layers, "attention_value_output" if z else "block_input")
        for layer in layers:
            model = pv.IntervenableModel(pv.IntervenableConfig(
                [pv.RepresentationConfig(layer, component, unit, 1)], intervention_types=pv.VanillaIntervention), hf)
            mine = [i for i, s in enumerate(sites) if s.layer == layer]
            for start in range(0, len(mine), chunk):
                part = mine[start:start + chunk]
                pos = torch.cat([batch.position(sites[i].position) for i in part])  # row (site j, example e)
                example = rows.repeat(len(part))
                value = source[layer][example, pos]  # (rows, d_model)
                if z:
                    head = torch.tensor([sites[i].head for i in part]).repeat_interleave(n)
                    value = value.view(len(example), -1, d_head)[torch.arange(len(example)), head][:, None, None]
                    where = (head[:, None].tolist(), pos[:, None].tolist())
                else:
                    value, where = value[:, None], pos[:, None].tolist()
                _, patched = model({"input_ids": batch.clean[example]}, unit_locations={"sources->base": (
                    [where], [where])}, source_representations=value)
                logits = patched.logits[torch.arange(len(example)), answer[example]].view(len(part), n, -1)
                out[part] = torch.stack([clean - metric(lg, batch) for lg in logits])
    return out


def _source_values(pv, hf, batch, layers: list[int], component: str) -> dict[int, torch.Tensor]:
    """Each layer's `component` (d_model wide) at every position of the corrupt prompts, collected by pyvene in one
    forward."""
    every = list(range(batch.corrupt.shape[1]))
    collect = pv.IntervenableModel(pv.IntervenableConfig(
        [pv.RepresentationConfig(layer, component, "pos", len(every)) for layer in layers],
        intervention_types=pv.CollectIntervention), hf)
    (_, values), _ = collect({"input_ids": batch.corrupt}, unit_locations={"base": every})
    return dict(zip(layers, values))


def pyvene_model(model):
    """A plain HF copy for pyvene. Qwen2's config gets `head_dim` (d_model / heads, what Qwen2's attention uses when
    it is absent), which pyvene's Qwen2 map reads to split `o_proj`'s input into heads."""
    import pyvene  # noqa: F401  deferred: the `bench` extra; imported here, outside the timed sweeps

    hf = hf_copy(model)
    if not hasattr(hf.config, "head_dim") or hf.config.head_dim is None:
        hf.config.head_dim = model.cfg.d_head
    return hf


def nnsight_model(model):
    from nnsight.modeling.transformers import TransformersModel  # deferred: the `bench` extra

    hf = hf_copy(model)
    return TransformersModel(hf, tokenizer=model.tokenizer, task="text-generation"), hf


def ablation(model, batch, sites, metric) -> dict:
    """The engine's parts, each a sweep on the same sites: whole forwards through the bridge (batching only, the
    bridge's modules), whole direct forwards (batching only), + lower-layer skip (rows resume at their block's input
    but compute every position), + earlier-position skip (from the patched position on), + rows patching `z` join
    their block at `z` and recompute its output at the changed positions only, + rows whose patch writes the run's own
    value read from it, not run (the engine)."""

    def every_position(layer, example, start, stop, answer, at_z=None):
        return engine.Rows(layer, example, torch.zeros_like(start), stop, answer)

    def at_block_input(layer, example, start, stop, answer, at_z=None):
        return engine.Rows(layer, example, start, stop, answer)

    def resumed(rows=None):
        def run():
            with every_row(), mock.patch.object(write, "Rows", rows or engine.Rows):
                return patch_sites(model, batch, sites, metric, Direction.NOISING)[0]
        return run

    def bridge_full():
        with bridge_only():
            return patch_sites(model, batch, sites, metric, engine=Engine.FULL)[0]

    return {"bridge whole forwards": bridge_full,
            "direct whole forwards": lambda: patch_sites(model, batch, sites, metric, engine=Engine.FULL)[0],
            "+ lower-layer skip": resumed(every_position),
            "+ earlier-position skip": resumed(at_block_input),
            "+ join at z": resumed(),
            "+ unchanged rows read": lambda: patch_sites(model, batch, sites, metric)[0]}


def plain_forward(model, batch):
    """One forward of the clean prompts to the answer logits, without autograd (as every sweep runs: with it, the
    forward would keep every activation for a backward, about 8× the memory on world-gpt2)."""
    def run():
        with torch.no_grad():
            return direct.answer_forward(model, batch.clean, batch.answer_pos)
    return run
