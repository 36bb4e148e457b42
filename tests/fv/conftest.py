"""Fixtures for the function-vector tests: the embedded world teacher (HF and hooked), a tiny world-relation run
through the real CLI, and runtime jaxtyping checks on `rcid_tl.fv`."""

import jaxtyping

# Must come before the first import of rcid_tl.fv so that its annotated functions are shape-checked.
jaxtyping.install_import_hook(["rcid_tl.fv"], "beartype.beartype")

import pytest  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from rcid_tl.models import load_model  # noqa: E402
from rcid_tl.models.embedded import embedded_path  # noqa: E402

WORLD = "world-gpt2"
# A small but complete run: 2 relations × 4 trials × 24 heads, the injection sweep over two layers.
RUN_ARGS = ["--model", WORLD, "--relations", "world", "--qids", "antonym,successor", "--n-trials", "4",
            "--n-demos", "3", "--k", "3", "--inject-layers", "1,2", "--alpha", "1,2"]


@pytest.fixture(scope="session")
def world():
    return load_model(WORLD)


@pytest.fixture(scope="session")
def world_hf():
    return AutoModelForCausalLM.from_pretrained(embedded_path(WORLD), attn_implementation="eager").eval()
