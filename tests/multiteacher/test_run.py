"""A two-teacher run end to end: different architectures (GQA Qwen2, MHA GPT-2) and tokenizers (the CoT world
tokenizer, the real GPT-2 tokenizer), a learned router, compressed student reasoning, interrupted and resumed."""

import json

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from rcid_tl.distill.config import OptimConfig
from rcid_tl.errors import InputError
from rcid_tl.multiteacher.ablation import Arm
from rcid_tl.multiteacher.controls import record_or_check_split
from rcid_tl.multiteacher.run import MultiTeacherRunConfig, run_multiteacher
from rcid_tl.world.tokenizer import build_cot_tokenizer


@pytest.fixture(scope="module")
def cot_qwen2_dir(tmp_path_factory):
    """A seeded random 2-layer GQA Qwen2 with the CoT tokenizer, saved as an HF directory."""
    out = tmp_path_factory.mktemp("cot-qwen2")
    tok = build_cot_tokenizer()
    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                 tie_word_embeddings=False)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def config(teachers, **overrides):
    arm = Arm("two-teacher-learned", tuple(str(t) for t in teachers), fusion="learned")
    settings = dict(n_train=48, n_teacher=6, batch_size=4, eval_n=4, curve_n=2, eval_every=2, checkpoint_every=2, log_every=2,
                    layer_map="cka")
    return MultiTeacherRunConfig(arm, OptimConfig(steps=4, lr=3e-3, warmup=1), **(settings | overrides))


def test_two_teachers_with_a_learned_router_run_and_resume(cot_qwen2_dir, tiny_gpt2_dir, tmp_path):
    cfg = config([cot_qwen2_dir, tiny_gpt2_dir])
    assert run_multiteacher(cfg, tmp_path, stop_after=2) is None
    metrics = run_multiteacher(cfg, tmp_path)  # resumes at step 2
    assert metrics["compute"]["steps"] == 4 and metrics["compute"]["examples"] == 16
    routing = metrics["routing"]
    assert [r["step"] for r in routing] == [2, 4]
    for row in routing:
        assert sum(v for k, v in row.items() if k.startswith("w_")) == pytest.approx(1, abs=1e-5)
    assert routing[-1] != routing[0]  # the router learned something (it starts at exactly equal weights)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert {"ce", "kv", "k_cos", "v_cos", "attn_kl"} <= set(log[-1])
    for name in ("metrics.json", "routing.html", "learning_curves.html", "split.json", "layer_map_0.json",
                 "layer_map_1.json", "student/config.json"):
        assert (tmp_path / name).is_file(), name
    with pytest.raises(InputError, match="records data split"):
        record_or_check_split(tmp_path, "another split")


def test_bad_run_settings_are_one_line():
    with pytest.raises(InputError, match="--layer-map 'depth' is neither ratio, cka nor one existing map file per teacher"):
        config(["world-gpt2"], layer_map="depth")
    with pytest.raises(InputError, match="unknown student reasoning 'latent'"):
        config(["world-gpt2"], reasoning="latent")
