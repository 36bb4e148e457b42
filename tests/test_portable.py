"""Every model directory the project ships or writes gives the same token ids and logits through plain
`AutoTokenizer`/`AutoModelForCausalLM.from_pretrained(dir)` as through rcid-tl's `load_model` (rcid_tl.portable)."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rcid_tl.artifacts import atomic_dir
from rcid_tl.causalqwen import causal_qwen_from_qwen2, save_causal_qwen
from rcid_tl.models import load_model, save_hf_model
from rcid_tl.models.embedded import embedded_names, embedded_path
from rcid_tl.models.student import StudentConfig, build_student_for

EMBEDDED = ["world-gpt2", "world-gpt2-cot", "world-gpt2-cot-digits", "world-qwen2", "world-qwen2-cot"]
from rcid_tl.portable import make_tokenizer_portable, write_tokenizer
from rcid_tl.world.teachers import TINY_SHAPES, Arch, build_teacher
from rcid_tl.world.tokenizer import build_cot_tokenizer, build_tokenizer
from tests.causalqwen.conftest import tiny_qwen2

TEXTS = [
    "Q: Martha had 19 tigers . Then Martha found 6 more .",  # AutoTokenizer once made 6 wrong ids of these 13
    "When Mary and John went to the store, John gave a drink to",
    "The war lasted from the year 1732 to the year 17",
    "A: 19 + 6 = 25 .\nQ: zebra-like qwertz 123456 ,;",  # a new line, unknown words, long numbers
]
# plain transformers runs attention with SDPA, load_model with eager attention (TransformerLens needs the pattern
# hooks): the same float32 sums in another order, measured at most 2.1e-5 on the embedded models' logits
ATOL = 1e-4


def assert_loads_the_same(directory: Path) -> None:
    ours = load_model(str(directory))
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    for text in TEXTS:
        ids = tokenizer(text)["input_ids"]
        assert ids == ours.tokenizer(text)["input_ids"], (directory.name, text)
        tokens = torch.tensor([ids])
        with torch.no_grad():
            torch.testing.assert_close(model(tokens).logits, ours(tokens), atol=ATOL, rtol=0)


def test_every_model_is_checked():
    assert embedded_names() == EMBEDDED


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_model_loads_the_same_with_plain_transformers(name):
    assert_loads_the_same(embedded_path(name))


def test_the_known_qwen2_defect_is_gone():
    ids = AutoTokenizer.from_pretrained(embedded_path("world-qwen2"))(TEXTS[0])["input_ids"]
    assert len(ids) == 13 and ids == load_model("world-qwen2").tokenizer(TEXTS[0])["input_ids"]


@pytest.mark.parametrize("architecture", ["gpt2", "qwen2"])
def test_distilled_student_directory_is_portable(tmp_path, architecture):
    teacher = load_model("world-qwen2")
    student = build_student_for(teacher, StudentConfig(architecture, n_layers=1, d_model=32, n_heads=4))
    assert_loads_the_same(save_hf_model(student, tmp_path / "student"))


def test_causal_qwen_directory_is_portable(tmp_path):
    # CausalQwen is not a transformers architecture: `import rcid_tl` (done here) registers it with the Auto
    # classes; its directory names no code to run, so trust_remote_code stays off.
    tokenizer = build_tokenizer()
    causal = causal_qwen_from_qwen2(tiny_qwen2(len(tokenizer), tokenizer.eos_token_id))
    assert_loads_the_same(save_causal_qwen(causal, tokenizer, tmp_path / "causal"))


@pytest.mark.parametrize("arch", list(Arch))
@pytest.mark.parametrize("cot", [False, True], ids=["world", "cot"])
def test_teacher_directory_is_portable(tmp_path, arch, cot):
    # the two calls the world and CoT trainers save their model with (rcid_tl.world.training, .cot_training)
    tokenizer = build_cot_tokenizer() if cot else build_tokenizer()
    model = build_teacher(TINY_SHAPES[arch], len(tokenizer), tokenizer.eos_token_id)
    with atomic_dir(tmp_path / "model") as model_dir:
        model.save_pretrained(model_dir)
        write_tokenizer(tokenizer, model_dir)
    assert_loads_the_same(tmp_path / "model")


def test_portability_is_added_only_where_autotokenizer_would_swap_the_class(tmp_path):
    tokenizer = build_tokenizer()
    for arch in Arch:
        build_teacher(TINY_SHAPES[arch], len(tokenizer), tokenizer.eos_token_id).save_pretrained(tmp_path / arch.value)
        tokenizer.save_pretrained(tmp_path / arch.value)
    assert make_tokenizer_portable(tmp_path / "qwen2") and not make_tokenizer_portable(tmp_path / "qwen2")
    assert not make_tokenizer_portable(tmp_path / "gpt2")  # AutoTokenizer follows tokenizer_config.json already
    assert "auto_map" not in json.loads((tmp_path / "gpt2" / "tokenizer_config.json").read_text())
    tokenizer.save_pretrained(tmp_path / "alone")
    assert not make_tokenizer_portable(tmp_path / "alone")  # no config.json: nothing to swap the class
