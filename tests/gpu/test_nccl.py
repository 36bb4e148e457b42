"""NCCL process groups (rcid_tl.parallel): two processes, one GPU each, split a sweep's chunks and gather them back
to what one process computes. Needs two GPUs; gloo on the CPU is covered by tests/parallel.

Tolerance 1e-5 absolute on Δ (fp32): each chunk is computed exactly as one process computes it, but on another GPU
of possibly another model, so kernels may round differently."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.parallel import world
from rcid_tl.tasks import build_task
from rcid_tl.world.tokenizer import load_tokenizer, save_tokenizer

ATOL = 1e-5  # see module docstring
pytestmark = pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                                reason="needs two CUDA GPUs for a two-rank NCCL group")


def _sweep(device: str, tokenizer_dir: str) -> torch.Tensor:
    from tests.gpu.conftest import tiny_model

    tokenizer = load_tokenizer(tokenizer_dir)
    model = tiny_model("qwen2", tokenizer, device)
    dataset = build_task(model, "ioi", n=4, seed=1, corruption="abc")
    sites = [PatchSite(Site.Z, layer, "end", h) for layer in (0, 1) for h in range(model.cfg.n_heads)]
    delta, _ = patch_sites(model, dataset.batch(), sites, metric_for(dataset), rows_per_forward=3)
    return delta


def _rank(rank: int, port: int, tokenizer_dir: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=2)
    try:
        assert world().size == 2 and dist.get_backend() == "nccl"
        delta = _sweep(f"cuda:{rank}", tokenizer_dir)
        torch.save(delta, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_nccl_ranks_equal_one_process(tmp_path):
    tokenizer_dir = str(save_tokenizer(tmp_path / "tokenizer"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(port, tokenizer_dir, str(tmp_path / "delta")), nprocs=2, join=True)
    single = _sweep("cuda:0", tokenizer_dir)
    for rank in (0, 1):
        torch.testing.assert_close(torch.load(tmp_path / f"delta.{rank}"), single, atol=ATOL, rtol=0)
    assert single.abs().max() > 1e-3
