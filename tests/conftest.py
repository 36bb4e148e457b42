"""Shared fixtures: the real GPT-2 tokenizer, a tiny random GPT-2 saved as an HF directory, the real TinyStories
Llama, and an autouse check that no test leaves a hook attached to any hooked model."""

import json
import os
import weakref
from pathlib import Path

import jaxtyping

# Static PNGs start a browser (~4 s per process); tests that need one turn them back on.
os.environ.setdefault("RCID_TL_PNG", "0")

# Runtime shape checks (STYLE: jaxtyping + beartype in tests) on the library packages these tests cover. The hook
# must be installed before those modules are first imported, so it comes before every rcid_tl import.
jaxtyping.install_import_hook(
    ["rcid_tl.hooks", "rcid_tl.interventions", "rcid_tl.metrics", "rcid_tl.models", "rcid_tl.sweeps",
     "rcid_tl.tasks", "rcid_tl.heads", "rcid_tl.kv", "rcid_tl.multiteacher"],
    "beartype.beartype",
)

import pytest  # noqa: E402
import torch  # noqa: E402
from transformer_lens.model_bridge import TransformerBridge  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel  # noqa: E402

from rcid_tl.models import load_model  # noqa: E402
from rcid_tl.progress import set_progress  # noqa: E402
from tests.cli_runner import in_process_runner  # noqa: E402
from tests.hook_leaks import HookCounts, global_hook_leaks, hook_leaks, torch_hook_counts  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GPT2_TOKENIZER = DATA / "gpt2-tokenizer"
STORIES = DATA / "checkpoints" / "stories260K" / "hf"
IOI_REFERENCE = DATA / "ioi" / "ioi_reference.json"
GT_REFERENCE = DATA / "greater_than" / "greater_than_reference.json"

# Tiny GPT-2: 2 layers, d_model 64, 4 heads, GPT-2's full vocabulary so the real tokenizer's ids fit. A wider
# initialisation than HF's 0.02 makes logit differences O(1), so absolute tolerances on Δ are meaningful.
TINY_GPT2 = dict(vocab_size=50257, n_positions=128, n_layer=2, n_embd=64, n_head=4, initializer_range=0.2)

_BOOTED: "weakref.WeakKeyDictionary[TransformerBridge, HookCounts]" = weakref.WeakKeyDictionary()


def require(path: Path) -> Path:
    # A missing file fails the test instead of skipping it: a run without the shared data must not look green.
    if not path.exists():
        pytest.fail(f"shared test data not found at {path} (expected next to the repository, in ../shared/data)",
                    pytrace=False)
    return path


def pytest_report_header() -> str:
    found = "found" if DATA.is_dir() else "MISSING: every test that reads it fails"
    return f"shared test data: {DATA} ({found})"


@pytest.fixture(scope="session", autouse=True)
def _quiet_single_threaded():
    # The test machine has two cores shared with other jobs; torch's intra-op pool then makes a tiny model's
    # forward 5–20× slower and erratic. One thread keeps the suite fast and its timings stable.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    set_progress(False)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _track_bridges():
    """Record every TransformerBridge booted during the session with its torch hook counts at boot."""
    boot = TransformerBridge.boot_transformers

    def tracked(*args, **kwargs):
        bridge = boot(*args, **kwargs)
        _BOOTED[bridge] = torch_hook_counts(bridge)
        return bridge

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TransformerBridge, "boot_transformers", staticmethod(tracked))
        yield


@pytest.fixture(autouse=True)
def _no_hook_left_behind():
    yield
    leaks = global_hook_leaks()
    for bridge, baseline in list(_BOOTED.items()):
        found = hook_leaks(bridge, baseline)
        if found:
            bridge.reset_hooks(including_permanent=True)  # so one leak does not fail every later test too
            leaks += [f"{bridge.cfg.model_name}: {leak}" for leak in found]
    if leaks:
        pytest.fail("test left hooks attached:\n  " + "\n  ".join(leaks))


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    return AutoTokenizer.from_pretrained(require(GPT2_TOKENIZER))


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, gpt2_tokenizer) -> Path:
    """A seeded random 2-layer GPT-2 saved with the GPT-2 tokenizer: a real HF directory, fully offline."""
    out = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(**TINY_GPT2)).save_pretrained(out)
    gpt2_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_gpt2_dir) -> TransformerBridge:
    return load_model(str(tiny_gpt2_dir))


@pytest.fixture(scope="session")
def tiny_gpt2_hf(tiny_gpt2_dir):
    """The same weights as plain `transformers` (a separate copy: deep-copy before editing it)."""
    return AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir, attn_implementation="eager").eval()


@pytest.fixture(scope="session")
def stories_dir() -> Path:
    return require(STORIES)


@pytest.fixture(scope="session")
def stories(stories_dir) -> TransformerBridge:
    """Karpathy's stories260K: Llama with RoPE and grouped-query attention (8 query heads, 4 KV heads)."""
    return load_model(str(stories_dir))


@pytest.fixture(scope="session")
def stories_hf(stories_dir):
    return AutoModelForCausalLM.from_pretrained(stories_dir, attn_implementation="eager").eval()


@pytest.fixture(scope="session")
def stories_pairs(tmp_path_factory, stories_dir) -> Path:
    """Name-swap pairs for stories260K. Its 512-token vocabulary has few whole-word names: " Lily", " Tim" and
    " Timmy" are single tokens, so swapping them keeps clean and corrupt the same length."""
    rows = [
        {"clean": "Lily and Tim went to the park. Tim gave the ball to",
         "corrupt": "Lily and Tim went to the park. Lily gave the ball to", "answer": " Lily", "wrong": " Tim"},
        {"clean": "Tim and Lily went to the park. Lily gave the ball to",
         "corrupt": "Tim and Lily went to the park. Tim gave the ball to", "answer": " Tim", "wrong": " Lily"},
        {"clean": "Lily and Timmy played with a big ball. Timmy said hello to",
         "corrupt": "Lily and Timmy played with a big ball. Lily said hello to", "answer": " Lily",
         "wrong": " Timmy"},
    ]
    path = tmp_path_factory.mktemp("pairs") / "stories_pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def ioi_reference() -> dict:
    return json.loads(require(IOI_REFERENCE).read_text())


@pytest.fixture(scope="session")
def gt_reference() -> dict:
    return json.loads(require(GT_REFERENCE).read_text())


@pytest.fixture
def cli(monkeypatch, capsys):
    """Call `rcid-tl ARGS...` in-process; returns the exit code and the captured output."""
    return in_process_runner(monkeypatch, capsys)
