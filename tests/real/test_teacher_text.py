"""`rcid-tl distill --text teacher-text` (its library call) on the real stories260K: one pre-training and one
distillation step on
sequences the teacher sampled, with the generation seed and every token id recorded; the sample is reproducible
and comes from the teacher (its own perplexity on a held-out sample is low); bad generation options refused."""

import json

import torch
from transformers import AutoModelForCausalLM

from rcid_tl.distill.config import DistillConfig, OptimConfig
from rcid_tl.distill.evaluate import perplexity
from rcid_tl.distill.run import run_distill
from rcid_tl.distill.teacher_text import Generation, plain_copy, sample_sequences
from rcid_tl.tasks.registry import TaskSpec


def test_distill_on_teacher_text_records_the_sample(tmp_path, stories, stories_dir):
    out = tmp_path / "kd"
    config = DistillConfig(
        teacher=str(stories_dir), method="standard-kd", task=TaskSpec("tinystories-pronoun:train", n=8),
        optim=OptimConfig(steps=1, warmup=1), pretrain=OptimConfig(steps=1, warmup=1), batch_size=4, top_k=1,
        text="teacher-text", mix_weight=0.5, generation=Generation(n=4, length=20, seed=7), ppl_rows=2,
        n_bootstrap=10, checkpoint_every=1, log_every=1)
    metrics = run_distill(config, out)
    record = metrics["teacher_text"]
    assert (record["seed"], record["n"], record["length"], record["file"]) == (7, 4, 20, "teacher_text.json")
    sample = json.loads((out / "teacher_text.json").read_text())
    assert sample["seed"] == 7 and sample["sha256"] == record["sha256"]
    assert torch.equal(torch.tensor(sample["token_ids"]), sample_sequences(stories, 4, 20, 7))  # reproducible
    assert all(row[0] == stories.tokenizer.bos_token_id for row in sample["token_ids"])
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["step"]) for r in log] == [("pretrain", 1), ("distill", 1)] and "mix_kl" in log[1]
    assert metrics["n_eval"] == 72 and metrics["task"] == "tinystories-pronoun:train"  # evaluated on held-out
    hf = AutoModelForCausalLM.from_pretrained(out / "student")
    assert hf.config.model_type == "llama" and hf.config.hidden_size == 32  # half the teacher's width


def test_the_sample_is_the_teachers(stories):
    ids = torch.randint(3, 500, (2, 10))
    hf = plain_copy(stories)
    with torch.no_grad():  # the cached plain copy gives the hooked model's logits, step by step
        out = hf(ids[:, :5], use_cache=True)
        step = hf(ids[:, 5:], cache=out.cache, use_cache=True)
        assert torch.allclose(torch.cat([out.logits, step.logits], 1), stories(ids), atol=1e-4)
    assert perplexity(stories, sample_sequences(stories, 4, 48, 1)) < 8  # near uniform (512) would be garbage


def test_generation_options_need_teacher_text(cli, tmp_path, stories_dir):
    run = cli("distill", "--teacher", stories_dir, "--task", "tinystories-pronoun:train", "--gen-n", "4",
              "--out", tmp_path / "x")
    assert run.code == 2 and "--gen-n" in run.stderr and "--text teacher-text" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
