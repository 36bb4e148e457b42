"""The sweep engine's memory-sized chunks: the chunk size follows the device's free memory (the GPU's own count on
CUDA), a sweep forced into many chunks equals one chunk, and on a GPU a chunk's peak memory stays within the share of
free memory the size was derived for.

Tolerance 1e-5 absolute + 1e-6 relative on Δ (fp32, |Δ| O(1)): chunks of 1 and of every row run other matmul
shapes, which round differently (tests/interventions/test_engine.py measures the same)."""

import torch

from rcid_tl.hooks.names import Site
from rcid_tl.interventions import engine
from rcid_tl.interventions.write import PatchSite, patch_sites
from rcid_tl.metrics import metric_for

ATOL, RTOL = 1e-5, 1e-6  # see module docstring


def _sites(model) -> list[PatchSite]:
    return [PatchSite(Site.Z, layer, p, h) for layer in range(model.cfg.n_layers) for p in ("s2", "end")
            for h in range(model.cfg.n_heads)]


def test_free_memory_is_the_devices_own(qwen2, device):
    free = engine.free_memory(device)
    if device == "cuda":
        assert free == torch.cuda.mem_get_info()[0]
    assert 0 < free
    fit = engine.rows_that_fit(qwen2, 20, 20)
    assert 1 <= fit <= engine.MAX_ROWS


def test_many_chunks_equal_one(qwen2, ioi, monkeypatch):
    """Free memory too small for two rows forces one row per forward; plenty gives one chunk for every row."""
    batch, metric, sites = ioi.batch(), metric_for(ioi), _sites(qwen2)
    forwards = []
    for name in ("resume", "resume_entering"):  # rows of one layer, or (direct forwards) of every layer
        real = getattr(engine, name)
        monkeypatch.setattr(engine, name, lambda *args, real=real, **kw: forwards.append(1) or real(*args, **kw))
    one, _ = patch_sites(qwen2, batch, sites, metric, rows_per_forward=len(sites) * len(batch))
    chunks_for_one = len(forwards)
    monkeypatch.setattr(engine, "free_memory", lambda device: 1)
    forwards.clear()
    many, _ = patch_sites(qwen2, batch, sites, metric)
    assert len(forwards) == len(sites) * len(batch) > chunks_for_one  # one row per forward
    torch.testing.assert_close(many, one, atol=ATOL, rtol=RTOL)
    assert one.abs().max() > 1e-3


def test_a_chunk_fits_the_memory_it_was_sized_for(device, world_tokenizer):
    """On a GPU: the peak memory of a sweep whose chunk size comes from free memory stays within the share of it the
    engine allows (1 / MEMORY_SHARE), on a model whose activations are large enough to measure (d_model 512)."""
    if device != "cuda":
        return  # the CPU has no allocator statistics to hold the engine to; the dry form is the test above
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rcid_tl.models.loading import wrap_hf_model
    from rcid_tl.tasks import build_task

    torch.manual_seed(0)
    hf = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(world_tokenizer), hidden_size=512, intermediate_size=2048,
                                      num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                                      max_position_embeddings=128, attn_implementation="eager")).eval().cuda()
    model = wrap_hf_model(hf, world_tokenizer, label="qwen2-512", device="cuda")
    dataset = build_task(model, "ioi", n=32, seed=0)
    sites = [PatchSite(Site.RESID_PRE, layer, p) for layer in range(4) for p in ("io", "s2", "end")]
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    free = torch.cuda.mem_get_info()[0]
    torch.cuda.reset_peak_memory_stats()
    patch_sites(model, dataset.batch(), sites, metric_for(dataset))
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() - before <= free / engine.MEMORY_SHARE
