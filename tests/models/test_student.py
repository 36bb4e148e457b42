"""Students from configs: the study's defaults, overrides, validation; and saving any hooked model back to a plain HF
directory that `transformers` loads to the same logits, after training changed the weights."""

import jaxtyping
import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.errors import InputError
from rcid_tl.models import StudentConfig, build_student_for, hf_state_dict, save_hf_model
from rcid_tl.models.loading import load_model
from rcid_tl.models.student import scaled_student_config


def test_default_student_is_seed_000s_shape(stories):
    assert StudentConfig() == StudentConfig("gpt2", 4, 384, 6, None, None, None, 0)
    student = build_student_for(stories, StudentConfig())
    cfg = student.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp) == (4, 384, 6, 4 * 384)
    assert (cfg.d_vocab, cfg.n_ctx) == (stories.cfg.d_vocab, stories.cfg.n_ctx)  # the teacher's
    assert student.tokenizer is stories.tokenizer


def test_student_per_teacher_is_a_third_of_the_depth_and_half_the_width():
    assert scaled_student_config("gpt2", 12, 12, 64) == StudentConfig("gpt2", 4, 384, 6)  # GPT-2 small → study
    assert scaled_student_config("gpt2", 6, 4, 32) == StudentConfig("gpt2", 2, 64, 2)
    assert scaled_student_config("qwen2", 4, 4, 24, 2) == StudentConfig("qwen2", 1, 48, 2, 1)
    assert scaled_student_config("gpt2", 6, 4, 32, n_layers=3).n_layers == 3


def test_default_student_of_an_embedded_teacher_follows_the_ratios():
    teacher = load_model("world-qwen2")
    student = build_student_for(teacher)
    assert (student.cfg.n_layers, student.cfg.d_model, student.cfg.n_heads) == (1, 48, 2)
    assert student.original_model.config.model_type == "qwen2"


@pytest.mark.parametrize("architecture", ["gpt2", "qwen2"])
def test_overrides_are_honoured(stories, architecture):
    config = StudentConfig(architecture, n_layers=2, d_model=48, n_heads=6, n_kv_heads=2 if architecture == "qwen2"
                           else None, d_mlp=96, n_ctx=64, seed=3)
    student = build_student_for(stories, config)
    cfg = student.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_mlp, cfg.n_ctx) == (2, 48, 6, 96, 64)
    assert student.original_model.config.model_type == architecture
    if architecture == "qwen2":
        assert student.original_model.config.num_key_value_heads == 2
    again = build_student_for(stories, config)  # seeded: same weights
    for (key, a), b in zip(hf_state_dict(student).items(), hf_state_dict(again).values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("bad, message", [
    (dict(n_layers=0), "n_layers must be ≥ 1"),
    (dict(d_model=100, n_heads=6), "d_model 100 is not divisible by n_heads 6"),
    (dict(architecture="qwen2", n_heads=6, n_kv_heads=4), "n_heads 6 is not divisible by n_kv_heads 4"),
])
def test_invalid_configs_are_input_errors(bad, message):
    with pytest.raises(InputError, match=message):
        StudentConfig(**bad)


def test_unknown_architecture_is_refused():
    # under this suite's runtime type checks beartype refuses a value outside Literal["gpt2", "qwen2"] before
    # __post_init__ runs; without them __post_init__ raises the InputError
    with pytest.raises((InputError, jaxtyping.TypeCheckError), match="mamba"):
        StudentConfig(architecture="mamba")


@pytest.mark.parametrize("architecture", ["gpt2", "qwen2"])
def test_trained_student_round_trips_through_save_hf_model(stories, tmp_path, architecture):
    student = build_student_for(stories, StudentConfig(architecture, n_layers=2, d_model=32, n_heads=4))
    before = {k: v.clone() for k, v in hf_state_dict(student).items()}
    tokens = torch.tensor([[1, 317, 269, 326, 263, 377, 267, 265, 282, 295, 433, 426]])
    student.train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-2)
    logits = student(tokens)
    loss = torch.nn.functional.cross_entropy(logits[0, :-1], tokens[0, 1:])
    loss.backward()
    optimizer.step()
    student.eval()
    after = hf_state_dict(student)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the step changed the weights

    out = save_hf_model(student, tmp_path / "student")
    reloaded = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    with torch.no_grad():
        ours, theirs = student(tokens), reloaded(tokens).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-6)  # same weights; float32 rounding only
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp directory left behind


def test_teacher_round_trips_through_save_hf_model(stories, stories_hf, tmp_path):
    out = save_hf_model(stories, tmp_path / "teacher")
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    for key, value in stories_hf.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


@pytest.mark.parametrize("architecture", ["gpt2", "qwen2"])
@pytest.mark.parametrize("teacher", ["tiny_gpt2", "stories"])
def test_saved_student_tokenizes_like_its_teacher(request, tmp_path, teacher, architecture):
    # A qwen2 config next to a generic tokenizer.json: AutoTokenizer would substitute Qwen2Tokenizer (which splits
    # digits one by one); load_model must load the tokenizer that was saved.
    teacher = request.getfixturevalue(teacher)
    student = build_student_for(teacher, StudentConfig(architecture, n_layers=1, d_model=32, n_heads=4))
    out = save_hf_model(student, tmp_path / "student")
    text = "Lily and Tim went to the park in the year 1732."
    assert load_model(str(out)).tokenizer.encode(text) == teacher.tokenizer.encode(text)
