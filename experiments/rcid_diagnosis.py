"""Why RCID stays at chance: cheap measurements on one seed of the distillation study (world-gpt2 → 2×64 student,
IOI). Rebuilds the study's pre-trained student (same config, same steps), checks that its W* is the one the RCID run
trained with, then measures on it and on the trained RCID, StandardKD and FitNets students: the RCID term against
its floor under the frozen W*, the reachable share of the teacher's imprints, the gradients of the KL and of the
term (norms, cosine), the imprints per position, and how much of each checkpoint's imprint is the swapped token.

    OMP_NUM_THREADS=1 python experiments/rcid_diagnosis.py --seed 123 --out runs/rcid_investigation/diagnosis.json
"""

import argparse
import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from rcid_tl import __version__
from rcid_tl.artifacts import write_json
from rcid_tl.distill.config import DistillConfig, OptimConfig
from rcid_tl.distill.diagnose import gradient_split, imprint_profile, reachable, token_share
from rcid_tl.distill.methods import Method, Objective
from rcid_tl.distill.run import _pretrain_loss, prepare
from rcid_tl.distill.targets import fit_maps, precompute_targets
from rcid_tl.training import train_phase
from rcid_tl.models.loading import load_model
from rcid_tl.tasks.registry import TaskSpec

STUDY = Path("runs/distill_study")
N_BATCHES = 4  # batches of 32 (the study's first four) for the gradient measurements
N_PROFILE = 128  # examples for the imprint profiles


def study_config(seed: int, checkpoints: Path) -> DistillConfig:
    """The study's RCID run (experiments/distill_study.py RUN_ARGS through `rcid-tl distill`), fixed checkpoints."""
    return DistillConfig(
        teacher="world-gpt2", method=Method.RCID, task=TaskSpec("ioi", n=4096, seed=seed, corruption="s2-io"),
        optim=OptimConfig(steps=1000, lr=3e-3, warmup=50), seed=seed, lam=1.0, top_k=8, checkpoints=str(checkpoints),
        pretrain=OptimConfig(steps=300, lr=3e-3, warmup=15), eval_n=200, log_every=10)


def pretrained_student(s, config: DistillConfig) -> None:
    """Next-token pre-training exactly as `rcid-tl distill` does it, in place on `s.student`."""
    p = config.pretrain
    rows = s.text.rows(s.teacher.tokenizer, p.steps * config.pretrain_rows, config.pretrain_len)
    with tempfile.TemporaryDirectory() as tmp:
        train_phase("pretrain", nn.ModuleDict({"student": s.student.original_model}),
                    _pretrain_loss(s.student, rows, config.pretrain_rows), p, torch.arange(p.steps),
                    state_path=Path(tmp) / "state.pt", log_path=Path(tmp) / "log.jsonl",
                    checkpoint_every=p.steps, log_every=p.steps, settings="{}")


def measure(name: str, student, s, objective: Objective, targets, maps) -> dict:
    """Every measurement for one student (W* and the teacher's targets fixed)."""
    student.eval()
    grads = []
    for b in range(N_BATCHES):
        rows = torch.arange(b * 32, (b + 1) * 32)
        batch = s.train.batch(rows.tolist())
        grads.append(gradient_split(objective, student, batch, targets.take(rows, batch.clean.shape[1])))
    rows = torch.arange(N_PROFILE)
    batch = s.train.batch(rows.tolist())
    with torch.no_grad():
        objective.lam = 1.0
        _, parts = objective(student, batch, targets.take(rows, batch.clean.shape[1]))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "student": name, "kl": parts["kl"], "term": parts["term"],
        "grad_kl_norm": mean([g.kl_norm for g in grads]), "grad_term_norm": mean([g.term_norm for g in grads]),
        "grad_cosine": mean([g.cosine for g in grads]), "grad_cosines": [g.cosine for g in grads],
        "student_imprints": {f"L{layer}": imprint_profile(student, batch, layer, list(s.train.position_names))
                             for layer in range(student.cfg.n_layers)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--out", type=Path, default=Path("runs/rcid_investigation/diagnosis.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    saved = json.loads((STUDY / f"rcid-{args.seed}" / "metrics.json").read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    chosen = write_json(args.out.with_name(f"checkpoints-{args.seed}.json"), {"checkpoints": saved["checkpoints"]})
    config = study_config(args.seed, chosen)
    same = {k: (v, saved["config"][k]) for k, v in config.to_dict().items()
            if k in saved["config"] and k != "checkpoints" and v != saved["config"][k]}
    assert not same, f"not the study's config: {same}"
    s = prepare(config)
    pretrained_student(s, config)
    maps = fit_maps(s.teacher, s.student, s.train, s.pairings, n_fit=config.n_fit)
    state = torch.load(STUDY / f"rcid-{args.seed}" / "train_state.pt", weights_only=True)["modules"]
    w_gap = max(float((maps[k].weight - state[f"objective.maps.{k}.weight"]).abs().max()) for k in maps)
    targets = precompute_targets(s.teacher, s.train, s.pairings)
    objective = Objective(Method.RCID, s.pairings, maps, lam=1.0, temperature=config.temperature)
    rows = torch.arange(N_PROFILE)
    batch = s.train.batch(rows.tolist())
    checkpoints = []
    for i, p in enumerate(s.pairings):
        checkpoints.append({
            "teacher_layer": p.teacher_layer, "student_layer": p.student_layer, "position": p.position,
            **reachable(maps[p.key].weight, targets.imprints[:, i]),
            "token_share_teacher": token_share(s.teacher, batch, p.teacher_layer, p.position),
            "token_share_student": token_share(s.student, batch, p.student_layer, p.position)})
    teacher_imprints = {f"L{layer}": imprint_profile(s.teacher, batch, layer, list(s.train.position_names))
                        for layer in range(s.teacher.cfg.n_layers)}
    students = [measure("pre-trained (distillation start)", s.student, s, objective, targets, maps)]
    for method in ("rcid", "standard-kd", "fitnets"):
        trained = load_model(str(STUDY / f"{method}-{args.seed}" / "student"))
        students.append(measure(f"{method} (trained)", trained, s, objective, targets, maps))
    write_json(args.out, {"rcid_tl_version": __version__, "seed": args.seed, "config": config.to_dict(),
                          "w_star_max_abs_gap_to_run": w_gap, "checkpoints": checkpoints,
                          "teacher_imprints": teacher_imprints, "students": students,
                          "n_gradient_batches": N_BATCHES, "n_profile": N_PROFILE})
    print(json.dumps({"w_gap": w_gap, "checkpoints": checkpoints, "students": students}, indent=1))


if __name__ == "__main__":
    main()
