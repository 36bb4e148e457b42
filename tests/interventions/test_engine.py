"""The resumed-row engine (rows start at their patched layer and position, reading the rest from the unpatched run)
against the full engine (every row a whole forward from token ids; itself checked against transformer_lens.patching
and plain HF hooks in test_write.py): every patchable site kind, both directions, MHA (GPT-2) and GQA (Qwen2, Llama),
padded batches of different lengths, with and without BOS, patches at position 0.

Tolerance 1e-5 absolute on Δ (fp32, logit differences O(1)–O(10)): both engines compute the same function, but the
resumed rows run fewer positions and rows per matmul, so results agree to float32 rounding, not bitwise.
"""

import dataclasses

import pytest
import torch

from rcid_tl.hooks.names import Site
from rcid_tl.interventions import direct
from rcid_tl.interventions import engine as engine_module
from rcid_tl.interventions.engine import reference_run
from rcid_tl.interventions.write import PATCHABLE, Direction, Engine, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model
from rcid_tl.tasks import IOIConfig, PairsConfig, build_ioi, build_pairs, build_task

ATOL = 1e-5  # see module docstring


@pytest.fixture(scope="module")
def world_gpt2():
    return load_model("world-gpt2")


@pytest.fixture(scope="module")
def world_qwen2():
    return load_model("world-qwen2")


@pytest.fixture(params=["tiny-gpt2", "world-gpt2", "world-qwen2-no-bos", "stories-no-bos"])
def case(request):
    """(bridge, dataset, positions): padded IOI batches on the GPT-2/Qwen2 models, name-swap pairs on stories260K
    without BOS (one pair differs at its first token, so `diff` is position 0 there)."""
    if request.param == "stories-no-bos":
        model = request.getfixturevalue("stories")
        pairs = request.getfixturevalue("stories_pairs")
        return model, build_pairs(PairsConfig(pairs, prepend_bos=False), model.tokenizer), ("diff", "end")
    name = {"tiny-gpt2": "tiny_gpt2", "world-gpt2": "world_gpt2", "world-qwen2-no-bos": "world_qwen2"}[request.param]
    model = request.getfixturevalue(name)
    dataset = build_task(model, "ioi", n=5, seed=3, prepend_bos=not request.param.endswith("no-bos"))
    return model, dataset, ("io", "s2", "end")


def _sites(model, site: Site, positions) -> list[PatchSite]:
    heads = range(model.cfg.n_heads) if site.per_head else (None,)
    return [PatchSite(site, layer, p, h) for layer in range(model.cfg.n_layers) for p in positions for h in heads]


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("site", PATCHABLE)
def test_resumed_rows_equal_full_forwards(case, site, direction):
    model, dataset, positions = case
    batch, metric, sites = dataset.batch(), metric_for(dataset), _sites(model, site, positions)
    assert reference_run(model, batch.clean, batch.answer_pos).reproduces_head  # else RESUME falls back to FULL
    full, full_runs = patch_sites(model, batch, sites, metric, direction, 16, engine=Engine.FULL)
    fast, fast_runs = patch_sites(model, batch, sites, metric, direction, 16, engine=Engine.RESUME)
    torch.testing.assert_close(fast, full, atol=ATOL, rtol=0)
    torch.testing.assert_close(fast_runs.clean, full_runs.clean, atol=ATOL, rtol=0)
    torch.testing.assert_close(fast_runs.corrupt, full_runs.corrupt, atol=ATOL, rtol=0)
    assert full.abs().max() > 1e-3  # real effects, not an agreement of zeros


def test_cases_cover_padding_and_bos(case):
    """The fixtures really exercise what the engine must handle: rows of different lengths (padded batches), and
    sequences that do or do not start with BOS as configured."""
    model, dataset, _ = case
    assert len({len(e.clean_ids) for e in dataset.examples}) > 1
    bos = model.tokenizer.bos_token_id
    starts = {e.clean_ids[0] == bos for e in dataset.examples}
    assert starts == {bool(dataset.config["prepend_bos"])}


@pytest.mark.parametrize("rows_per_forward", [1, 7, 1000])
def test_chunking_does_not_change_results(world_gpt2, rows_per_forward):
    """Chunks never cross a layer and start at their earliest patched position; any chunk size gives the same Δ."""
    dataset = build_task(world_gpt2, "ioi", n=4, seed=1)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = _sites(world_gpt2, Site.Z, ("s2", "end")) + _sites(world_gpt2, Site.RESID_PRE, ("io",))
    full, _ = patch_sites(world_gpt2, batch, sites, metric, engine=Engine.FULL)
    fast, _ = patch_sites(world_gpt2, batch, sites, metric, rows_per_forward=rows_per_forward)
    # one-row forwards take other matmul kernels: the full engine itself moves by 7e-6 between chunks of 1 and 64
    # rows here (|Δ| up to 19), so allow float32 rounding relative to Δ's size on top of ATOL
    torch.testing.assert_close(fast, full, atol=ATOL, rtol=1e-6)


def test_patch_at_position_zero_and_after_the_answer(world_qwen2):
    """A patch at position 0 (nothing before it to read back) and one after the answer (it cannot matter: Δ = 0)."""
    dataset = build_task(world_qwen2, "ioi", n=4, seed=2)
    batch = dataset.batch()
    edge = {"first": torch.zeros(len(batch), dtype=torch.long),
            "last": torch.full((len(batch),), batch.clean.shape[1] - 1, dtype=torch.long)}
    batch = dataclasses.replace(batch, positions={**batch.positions, **edge})
    sites = [PatchSite(Site.RESID_PRE, layer, p) for layer in (0, 1) for p in ("first", "last")]
    full, _ = patch_sites(world_qwen2, batch, sites, metric_for(dataset), engine=Engine.FULL)
    fast, _ = patch_sites(world_qwen2, batch, sites, metric_for(dataset))
    torch.testing.assert_close(fast, full, atol=ATOL, rtol=0)
    after = batch.positions["last"] > batch.answer_pos
    assert after.any() and fast[1::2][:, after].abs().max() <= ATOL


def test_failures_leave_no_hooks(tiny_gpt2, monkeypatch):
    """A resumed forward that raises with the patch hooks attached, and a reference run that raises with its KV and
    argument recorders attached, leave nothing behind (the autouse leak check also counts torch module hooks). The
    bridge path: a direct forward attaches nothing (test_direct.py)."""
    monkeypatch.setattr(direct, "enabled", False)
    dataset = build_ioi(IOIConfig(n=2, seed=0), tiny_gpt2.tokenizer)
    real, seen = engine_module.resume, []

    def failing(model, *args):
        seen.append([n for n, hp in model.hook_dict.items() if hp.fwd_hooks])
        real(model, *args)
        raise RuntimeError("forward failed")

    monkeypatch.setattr(engine_module, "resume", failing)
    with pytest.raises(RuntimeError, match="forward failed"):
        patch_sites(tiny_gpt2, dataset.batch(), [PatchSite(Site.RESID_POST, 0, "s2")], metric_for(dataset))
    assert seen and seen[0], "the patch hooks were attached during the failing forward"
    assert not [n for n, hp in tiny_gpt2.hook_dict.items() if hp.fwd_hooks]
    with pytest.raises(IndexError):  # a token id past the vocabulary fails inside the embedding
        reference_run(tiny_gpt2, torch.full((1, 3), 10**6), torch.tensor([2]))


def test_attention_without_layer_index_falls_back_to_every_position(tiny_gpt2, monkeypatch):
    """An attention the bridge cannot give a cache slot (no layer index) records no keys/values; rows then start at
    position 0 (still skipping lower blocks) and stay exact. The bridge path: a direct forward records every
    layer's keys/values itself."""
    monkeypatch.setattr(direct, "enabled", False)
    for block in tiny_gpt2.blocks:
        monkeypatch.setattr(block.attn, "_layer_idx", None)
    dataset = build_ioi(IOIConfig(n=3, seed=4), tiny_gpt2.tokenizer)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = _sites(tiny_gpt2, Site.Z, ("s2", "end")) + _sites(tiny_gpt2, Site.RESID_MID, ("io",))
    assert not reference_run(tiny_gpt2, batch.clean, batch.answer_pos).has_all_keys_values(2)
    full, _ = patch_sites(tiny_gpt2, batch, sites, metric, engine=Engine.FULL)
    fast, _ = patch_sites(tiny_gpt2, batch, sites, metric)
    torch.testing.assert_close(fast, full, atol=ATOL, rtol=0)


def test_a_model_with_another_head_is_patched_with_whole_forwards(tmp_path):
    """CausalQwen's logits come from its causal head, not the final norm and unembedding that resumed rows end in:
    the engine notices and patches whole forwards, so Δ is still exact (against the full engine, OvR metric)."""
    from rcid_tl.causalqwen import causal_qwen_from_qwen2, save_causal_qwen
    from rcid_tl.metrics import metric_named, metric_readout
    from rcid_tl.world.tokenizer import load_tokenizer, save_tokenizer
    from tests.causalqwen.conftest import tiny_qwen2

    tokenizer = load_tokenizer(save_tokenizer(tmp_path / "tokenizer"))
    causal = causal_qwen_from_qwen2(tiny_qwen2(len(tokenizer), tokenizer.eos_token_id))
    model = load_model(str(save_causal_qwen(causal, tokenizer, tmp_path / "causal-qwen")))
    dataset = build_task(model, "ioi", n=3)
    batch, (metric, _) = dataset.batch(), metric_named("ovr_prob_diff", dataset)
    sites = [PatchSite(Site.RESID_POST, layer, p) for layer in range(2) for p in ("s2", "end")]
    with metric_readout(model, "ovr_prob_diff"):
        assert not reference_run(model, batch.clean, batch.answer_pos).reproduces_head
        full, _ = patch_sites(model, batch, sites, metric, engine=Engine.FULL)
        fast, _ = patch_sites(model, batch, sites, metric)
    torch.testing.assert_close(fast, full, atol=ATOL, rtol=0)
    assert full.abs().max() > 1e-3


def test_rows_per_forward_from_free_memory(world_gpt2, monkeypatch):
    """Unset, the chunk size follows the free memory: plenty gives large chunks, almost none one row per forward;
    either way Δ is the same."""
    dataset = build_task(world_gpt2, "ioi", n=3, seed=5)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(Site.Z, layer, "end", head) for layer in (3, 5) for head in (0, 2)]
    assert engine_module.rows_that_fit(world_gpt2, 1, batch.clean.shape[1]) > len(sites) * len(batch)
    auto, _ = patch_sites(world_gpt2, batch, sites, metric)
    forwards = []
    monkeypatch.setattr(engine_module, "free_memory", lambda device: 1)
    monkeypatch.setattr(engine_module, "resume", lambda *args: forwards.append(args) or real_resume(*args))
    monkeypatch.setattr(engine_module, "resume_entering",
                        lambda *args: forwards.append(args) or real_resume_entering(*args))
    tight, _ = patch_sites(world_gpt2, batch, sites, metric)
    assert len(forwards) == len(sites) * len(batch)  # one row per forward
    torch.testing.assert_close(tight, auto, atol=ATOL, rtol=1e-6)  # chunk sizes 1 vs 12: see chunking test


real_resume, real_resume_entering = engine_module.resume, engine_module.resume_entering


def test_chunks_stay_in_one_layer_and_compute_little_waste():
    """Packing: a chunk never crosses a layer, holds at most rows_per_forward rows, and computes at most WASTE× the
    positions its rows need (a row alone is always allowed)."""
    torch.manual_seed(0)
    n = 200
    start = torch.randint(0, 15, (n,))
    rows = engine_module.Rows(torch.randint(0, 3, (n,)), torch.arange(n), start, start + torch.randint(1, 6, (n,)),
                              start)
    chunks = rows.chunks(16)
    assert sorted(torch.cat(chunks).tolist()) == list(range(n))
    for chunk in chunks:
        assert len(chunk) <= 16 and len(rows.layer[chunk].unique()) == 1
        computed = len(chunk) * int(rows.stop[chunk].max() - rows.start[chunk].min())
        assert len(chunk) == 1 or computed <= engine_module.WASTE * int((rows.stop - rows.start)[chunk].sum())


def test_chunks_across_layers_hold_rows_of_every_layer_in_layer_order():
    """Packing for direct forwards: a chunk takes rows of any layer, sorted by layer (each joins at its block), with
    the same row and waste limits; a sweep of every layer at one position fits in one chunk."""
    torch.manual_seed(0)
    n = 200
    start = torch.randint(0, 15, (n,))
    rows = engine_module.Rows(torch.randint(0, 3, (n,)), torch.arange(n), start, start + torch.randint(1, 6, (n,)),
                              start)
    chunks = rows.chunks(16, across_layers=True)
    assert sorted(torch.cat(chunks).tolist()) == list(range(n))
    assert any(len(rows.layer[chunk].unique()) > 1 for chunk in chunks)
    for chunk in chunks:
        assert len(chunk) <= 16 and bool((rows.layer[chunk].diff() >= 0).all())
        computed = len(chunk) * int(rows.stop[chunk].max() - rows.start[chunk].min())
        assert len(chunk) == 1 or computed <= engine_module.WASTE * int((rows.stop - rows.start)[chunk].sum())
    same = engine_module.Rows(torch.arange(6).repeat(4), torch.arange(24), torch.full((24,), 9), torch.full((24,), 10),
                              torch.full((24,), 9))
    assert len(same.chunks(64, across_layers=True)) == 1 and len(same.chunks(64)) == 6


@pytest.mark.parametrize("name", ["world_gpt2", "world_qwen2"])
def test_reference_and_source_in_one_forward_equal_two_forwards(name, request):
    """`reference_and_cache` runs both batches in one direct forward, right-padding the narrower one: the reference
    (answer logits, block inputs, keys/values, its activations at the names) and the other run's logits and
    activations equal two separate runs, shapes included, when the batches differ in width."""
    model = request.getfixturevalue(name)
    batch = build_task(model, "ioi", n=4, seed=6).batch()
    tokens, other = batch.clean, batch.corrupt[:, :-2]  # narrower: its answer positions must stay inside it
    answer = torch.minimum(batch.answer_pos, torch.tensor(other.shape[1] - 1))
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    ref, own, logits, cache = engine_module.reference_and_cache(model, tokens, answer, other, names)
    alone = reference_run(model, tokens, answer)
    alone_logits, alone_cache = direct.cache(model, other, names, answer)
    own_alone = direct.cache(model, tokens, names, answer)[1]
    torch.testing.assert_close(ref.logits, alone.logits, atol=ATOL, rtol=0)
    for mine, theirs in zip(ref.resid_pre, alone.resid_pre):
        torch.testing.assert_close(mine, theirs, atol=ATOL, rtol=0)
    for layer, (k, v) in alone.kv.items():
        torch.testing.assert_close(ref.kv[layer][0], k, atol=ATOL, rtol=0)
        torch.testing.assert_close(ref.kv[layer][1], v, atol=ATOL, rtol=0)
    torch.testing.assert_close(logits, alone_logits, atol=ATOL, rtol=0)
    for n in names:
        torch.testing.assert_close(cache[n], alone_cache[n], atol=ATOL, rtol=0)
        torch.testing.assert_close(own[n], own_alone[n], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["world-gpt2", "world-qwen2"])
def test_z_rows_join_at_z_and_reuse_what_their_patch_leaves(name, request, monkeypatch):
    """Rows patching `z` enter their block at `z` (the reference's block input and z) on direct forwards: the forward
    is handed them as `entering_z`, their Δ equals rows entering at the block's input (the same function, batched
    otherwise: ATOL), and a row whose patch changes nothing (s2-io leaves io and every position before s2 untouched)
    reads the reference's outputs and gives Δ = 0 bit for bit when it is run (rows that change nothing are run here:
    `patch_sites` otherwise reads them from the reference without running them, tested below)."""
    from rcid_tl.interventions import write

    monkeypatch.setattr(write, "skip_unchanged", False)
    model = request.getfixturevalue(name.replace("-", "_"))
    dataset = build_ioi(IOIConfig(n=6, seed=4), model.tokenizer)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(Site.Z, layer, p, head) for layer in (0, model.cfg.n_layers - 2, model.cfg.n_layers - 1)
             for p in ("io", "s2", "end") for head in (0, 1)]
    seen, real = [], direct.entering_blocks
    monkeypatch.setattr(direct, "entering_blocks", lambda *a, **k: seen.append(k["entering_z"]) or real(*a, **k))
    joined, _ = patch_sites(model, batch, sites, metric)
    assert seen and all(seen)
    monkeypatch.setattr(write, "Rows", lambda *fields: engine_module.Rows(*fields[:5]))  # every row at its input
    at_input, _ = patch_sites(model, batch, sites, metric)
    torch.testing.assert_close(joined, at_input, atol=ATOL, rtol=0)
    io = torch.tensor([s.position == "io" for s in sites])
    assert bool((joined[io] == 0).all()) and joined[~io].abs().max() > 1e-2


@pytest.mark.parametrize("path", ["direct", "bridge"])
@pytest.mark.parametrize("direction", list(Direction))
def test_rows_whose_patch_changes_nothing_are_read_from_the_run(world_qwen2, path, direction, monkeypatch):
    """IOI's corruption changes the name at s2 only, so a patch at any position before s2, or of layer 0's block input
    anywhere but s2, writes the run's own value: exactly those rows are not run (on direct forwards and through the
    bridge), their metric is the run's own (Δ = 0 bit for bit noising, clean − corrupt denoising), and every Δ
    equals running every row (ATOL)."""
    from rcid_tl.interventions import write

    monkeypatch.setattr(direct, "enabled", path == "direct")
    dataset = build_ioi(IOIConfig(n=6, seed=4), world_qwen2.tokenizer)
    batch, metric, layers = dataset.batch(), metric_for(dataset), range(world_qwen2.cfg.n_layers)
    sites = [PatchSite(site, layer, p, 1 if site.per_head else None) for site in (Site.RESID_PRE, Site.Z)
             for layer in layers for p in ("io", "s2", "end")]
    ran, real = [], write.run_rows
    monkeypatch.setattr(write, "run_rows", lambda model, ref, rows, *rest: ran.append(len(rows.layer))
                        or real(model, ref, rows, *rest))
    read, runs = patch_sites(world_qwen2, batch, sites, metric, direction)
    monkeypatch.setattr(write, "skip_unchanged", False)
    every, _ = patch_sites(world_qwen2, batch, sites, metric, direction)
    torch.testing.assert_close(read, every, atol=ATOL, rtol=0)
    differs = batch.clean != batch.corrupt
    examples = torch.arange(len(batch))
    unchanged = torch.stack([~(differs if s.site is Site.RESID_PRE and s.layer == 0 else differs.cummax(1).values)[
        examples, batch.position(s.position)] for s in sites])  # (site, example)
    assert 0 < int(unchanged.sum()) < unchanged.numel() and ran == [int((~unchanged).sum()), unchanged.numel()]
    own = torch.zeros_like(runs.clean) if direction is Direction.NOISING else runs.clean - runs.corrupt
    assert torch.equal(read[unchanged], own.expand_as(read)[unchanged])


def test_a_reference_changed_anywhere_but_z_records_no_z(world_gpt2):
    """Rows reuse a block's output where their `z` is the reference's only if nothing but `z` was changed in it."""
    batch = build_task(world_gpt2, "ioi", n=2, seed=0).batch()
    tokens, answer, layers = batch.clean, batch.answer_pos, world_gpt2.cfg.n_layers
    keep = lambda act, hook: act  # noqa: E731
    assert len(reference_run(world_gpt2, tokens, answer).z) == layers
    assert len(reference_run(world_gpt2, tokens, answer, hooks=[("blocks.1.attn.hook_z", keep)]).z) == layers
    assert reference_run(world_gpt2, tokens, answer, hooks=[("blocks.1.hook_resid_pre", keep)]).z == {}


def test_unchanged_means_the_same_bits():
    """A row is read from the run only where its patched value has the run's bits: −0.0 is not 0.0 (1/x tells them
    apart), while a NaN the run had there is the same value."""
    from rcid_tl.interventions.write import _bits

    assert not torch.equal(_bits(torch.tensor([-0.0])), _bits(torch.tensor([0.0])))
    nan = torch.tensor([float("nan")], dtype=torch.bfloat16)
    assert torch.equal(_bits(nan), _bits(nan.clone()))
    assert _bits(torch.zeros(2, dtype=torch.float64)).dtype == torch.int64
