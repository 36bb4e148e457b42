"""Fine-tune the embedded world teachers on chain-of-thought arithmetic (rcid_tl.world.cot) into world-*-cot.

    python experiments/train_cot_teachers.py --arch both --threads 1 --out runs/cot_teachers   # full run
    python experiments/train_cot_teachers.py --arch gpt2 --tiny --out runs/cot_tiny            # seconds: smoke run
    python experiments/train_cot_teachers.py --arch gpt2 --digits --out runs/cot_teachers      # world-gpt2-cot-digits

Re-running the same command resumes from `<out>/<arch>/checkpoint.pt`. The finished model is `<out>/<arch>/model`
(copy it to rcid_tl/embedded/world-<arch>-cot to ship it). `--digits` fine-tunes the shipped world-<arch>-cot with
numbers split into digits into `<out>/<arch>-digits/model` (ship as world-<arch>-cot-digits).
"""

import argparse
import dataclasses
import logging
import os
import shlex
import sys
from pathlib import Path

import torch

from rcid_tl.world.cot_training import CoTTokenizer, CoTTrainConfig, train_cot_teacher
from rcid_tl.world.teachers import GPT2_TEACHER, QWEN2_TEACHER, Arch
from rcid_tl.world.training import TrainConfig

PARENTS = {Arch.GPT2: ("world-gpt2", GPT2_TEACHER), Arch.QWEN2: ("world-qwen2", QWEN2_TEACHER)}
# Full-run budgets: under 15 single-thread CPU minutes per teacher, evaluation included.
FULL_STEPS = {Arch.GPT2: 500, Arch.QWEN2: 900}
FULL = {"lr": 1.5e-3, "warmup": 50, "eval_every": 250, "eval_prompts": 100}
COT_FRACTION = 0.6  # of documents; the rest are world documents, so the other task scores hold
# The digit teacher starts from the shipped CoT teacher: it re-learns the task with numbers split into digits (ID
# accuracy on 100 problems 0.16 after 200 steps, 0.68 after 600, 0.98 after 1000, 1.00 after 1400 and 1600).
DIGIT_STEPS, DIGIT_LR, DIGIT_EVAL_EVERY = 1600, 1e-3, 200
TINY = {"steps": 4, "batch_size": 4, "seq_len": 64, "warmup": 2, "log_every": 2, "checkpoint_every": 2,
        "eval_every": 4, "eval_prompts": 8, "final_eval_prompts": 8}


def config_for(arch: Arch, tiny: bool, seed: int, steps: int | None, digits: bool = False) -> CoTTrainConfig:
    """The run configuration of one CoT teacher (`digits`: the digit-tokenizer teacher fine-tuned from the CoT one)."""
    parent, shape = PARENTS[arch]
    full = {**FULL, "steps": FULL_STEPS[arch]} if not digits else {**FULL, "steps": DIGIT_STEPS, "lr": DIGIT_LR,
                                                                   "eval_every": DIGIT_EVAL_EVERY}
    train = TrainConfig(shape=shape, seed=seed, **(TINY if tiny else full))
    if steps:
        train = dataclasses.replace(train, steps=steps)
    extra = {"parent": f"{parent}-cot", "tokenizer": CoTTokenizer.DIGITS} if digits else {"parent": parent}
    if tiny:
        return CoTTrainConfig(train=train, cot_fraction=COT_FRACTION, eval_cot_examples=8, final_cot_examples=8,
                              **extra)
    return CoTTrainConfig(train=train, cot_fraction=COT_FRACTION, **extra)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["gpt2", "qwen2", "both"], default="both")
    parser.add_argument("--out", type=Path, default=Path("runs/cot_teachers"))
    parser.add_argument("--tiny", action="store_true", help="4 steps and small evaluations: a smoke test")
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--digits", action="store_true", help="fine-tune world-<arch>-cot with numbers split into "
                                                                 "digits (a teacher with another tokenizer)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--stop-after", type=int, default=None, help="stop (resumably) after this many steps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))  # the tokenizer's batch encoding, too
    command = shlex.join(["python", "experiments/train_cot_teachers.py", *argv])
    arches = [Arch.GPT2, Arch.QWEN2] if args.arch == "both" else [Arch(args.arch)]
    for arch in arches:
        cfg = config_for(arch, args.tiny, args.seed, args.steps, args.digits)
        out = args.out / (f"{arch.value}-digits" if args.digits else arch.value)
        model_dir = train_cot_teacher(cfg, out, command=command, stop_after=args.stop_after)
        logging.info("%s: %s", arch.value, model_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
