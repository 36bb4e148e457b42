"""The GPU suite's one skip and its small models. Without CUDA every GPU case skips with `NO_CUDA`'s reason and the
CPU's dry form of each check still runs; on a GPU machine run `python -m pytest tests/gpu -q`."""

import pytest
import torch

from rcid_tl.models.loading import wrap_hf_model
from rcid_tl.tasks import build_task
from rcid_tl.world.tokenizer import load_tokenizer, save_tokenizer
from tests.architectures.conftest import ARCHS, build_hf

NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(),
                             reason="needs a CUDA GPU; on a GPU machine run: python -m pytest tests/gpu -q")
# each check's dry form on the CPU and its real form on the GPU
DEVICES = ("cpu", pytest.param("cuda", marks=NO_CUDA))


@pytest.fixture(scope="session")
def world_tokenizer(tmp_path_factory):
    return load_tokenizer(save_tokenizer(tmp_path_factory.mktemp("world-tokenizer")))


def tiny_model(name: str, tokenizer, device: str, seed: int = 0):
    """A 2-layer random model of the architecture matrix (tests/architectures) on `device`, fp32 weights."""
    return wrap_hf_model(build_hf(ARCHS[name], tokenizer, seed).to(device), tokenizer, label=f"tiny-{name}",
                         device=device)


@pytest.fixture(scope="module", params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def qwen2(device, world_tokenizer):
    """Grouped-query Qwen2: the architecture the direct forward and the resumed engine both serve."""
    return tiny_model("qwen2", world_tokenizer, device)


@pytest.fixture(scope="module")
def ioi(qwen2):
    return build_task(qwen2, "ioi", n=4, seed=1, corruption="abc")
