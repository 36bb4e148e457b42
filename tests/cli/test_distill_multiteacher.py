"""`rcid-tl distill-multiteacher` end to end on two tiny chain-of-thought teachers: it trains, writes its metrics and
student, and a second run of the same command resumes at the end instead of training again."""

import json

import pytest


@pytest.fixture(scope="module")
def cot_teachers(tmp_path_factory):
    """Two random 2-layer chain-of-thought teachers of different shapes (GQA Qwen2, MHA GPT-2) on the CoT tokenizer."""
    from rcid_tl.models.saving import save_hf_model
    from rcid_tl.models.student import StudentConfig, build_student
    from rcid_tl.world.tokenizer import build_cot_tokenizer

    tok, root = build_cot_tokenizer(), tmp_path_factory.mktemp("cot-teachers")
    shapes = {"qwen2": StudentConfig("qwen2", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, seed=7),
              "gpt2": StudentConfig("gpt2", n_layers=2, d_model=32, n_heads=2, seed=8)}
    return [str(save_hf_model(build_student(shape, tok, vocab_size=len(tok), n_ctx=128), root / name))
            for name, shape in shapes.items()]


def test_distill_multiteacher_end_to_end_and_resume(cli, cot_teachers, tmp_path):
    out = tmp_path / "mt"
    args = ["distill-multiteacher", "--teachers", ",".join(cot_teachers), "--fusion", "similarity", "--n", "60",
            "--steps", "4", "--batch-size", "4", "--eval-n", "4", "--eval-every", "2", "--save-every", "2",
            "--out", str(out)]
    run = cli(*args)
    assert run.code == 0, run.stderr
    assert "2 teachers, similarity fusion, seed 42" in " ".join(run.stderr.split())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["arm"]["fusion"] == "similarity" and metrics["config"]["checkpoint_every"] == 2
    assert metrics["compute"]["steps"] == 4 and (out / "student" / "config.json").is_file()
    again = cli(*args)  # a finished run resumes at its end: nothing is trained twice
    assert again.code == 0, again.stderr
    assert json.loads((out / "metrics.json").read_text())["compute"] == metrics["compute"]
