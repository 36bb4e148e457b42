"""Train the embedded default teachers (GPT-2 and Qwen2 architectures) on the synthetic world corpus.

    python experiments/train_teachers.py --arch both --out runs/teachers          # full run
    python experiments/train_teachers.py --arch both --tiny --out runs/tiny      # ~1 minute smoke run
    python experiments/train_teachers.py --evaluate runs/teachers/gpt2/model     # held-out scores as JSON

Re-running the same command resumes from `<out>/<arch>/checkpoint.pt`.
"""

import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from rcid_tl.world.evaluate import evaluate_teacher
from rcid_tl.world.teachers import GPT2_TEACHER, QWEN2_TEACHER, TINY_SHAPES, Arch
from rcid_tl.world.tokenizer import load_tokenizer
from rcid_tl.world.training import TrainConfig, train_teacher

# Full-run budgets: together they fit the 60-minute, 2-core budget with room for data generation and evaluation.
FULL_STEPS = {Arch.GPT2: 5000, Arch.QWEN2: 4000}
TINY = {"steps": 60, "batch_size": 8, "seq_len": 64, "warmup": 10, "log_every": 10, "checkpoint_every": 30,
        "eval_every": 60, "eval_prompts": 32, "final_eval_prompts": 64}


def config_for(arch: Arch, tiny: bool, seed: int, steps: int | None) -> TrainConfig:
    """The run configuration of one teacher."""
    if tiny:
        cfg = TrainConfig(shape=TINY_SHAPES[arch], seed=seed, **TINY)
    else:
        cfg = TrainConfig(shape=GPT2_TEACHER if arch is Arch.GPT2 else QWEN2_TEACHER, seed=seed,
                          steps=FULL_STEPS[arch])
    return dataclasses.replace(cfg, steps=steps) if steps else cfg


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["gpt2", "qwen2", "both"], default="both")
    parser.add_argument("--out", type=Path, default=Path("runs/teachers"))
    parser.add_argument("--tiny", action="store_true", help="tiny models and 60 steps: a smoke test")
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--stop-after", type=int, default=None, help="stop (resumably) after this many steps")
    parser.add_argument("--evaluate", type=Path, default=None, help="only score this saved model directory")
    parser.add_argument("--eval-prompts", type=int, default=400, help="prompts per task for --evaluate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))  # the tokenizer's batch encoding, too
    if args.evaluate is not None:
        model = AutoModelForCausalLM.from_pretrained(args.evaluate)
        scores = evaluate_teacher(model, load_tokenizer(args.evaluate), n=args.eval_prompts)
        print(json.dumps(scores.to_dict(), indent=2))
        return
    command = shlex.join(["python", "experiments/train_teachers.py", *argv])
    arches = [Arch.GPT2, Arch.QWEN2] if args.arch == "both" else [Arch(args.arch)]
    for arch in arches:
        cfg = config_for(arch, args.tiny, args.seed, args.steps)
        model_dir = train_teacher(cfg, args.out / arch.value, command=command, stop_after=args.stop_after)
        logging.info("%s: %s", arch.value, model_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
