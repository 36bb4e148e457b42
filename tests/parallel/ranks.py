"""What each process of a test's process group runs: `python -m tests.parallel.ranks SCENARIO OUT [STOP_AFTER]`,
started by torchrun (or by `launch.bare_ranks`) with the repository root as the working directory.

Scenarios: `distill` (the tiny distillation run, stopped after STOP_AFTER steps if given), `sweeps` (patch, knockout
and FV CIE results, saved by rank 0), `fail` (the real CLI, with rank 1 failing during target precomputation)."""

import os
import sys
from pathlib import Path

import torch

from rcid_tl.distill.methods import Method
from rcid_tl.distill.run import run_distill
from rcid_tl.fv.cie import relation_cie
from rcid_tl.fv.relations import world_relation_set
from rcid_tl.fv.trials import PromptFormat, SamplingConfig, sample_trials
from rcid_tl.hooks.names import Head, Site
from rcid_tl.interventions.knockout import Ablation, knockout
from rcid_tl.interventions.write import PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model
from rcid_tl.parallel import joined, map_shards
from rcid_tl.progress import set_progress
from rcid_tl.tasks.registry import TaskSpec, build_task
from tests.distill.conftest import tiny_config

FAILING_RANK = 1
FAILURE = "rank 1 was told to fail"


def distill_config():
    """The tiny run of tests/distill, with a global batch of 4 (2 examples per process). Informed FitNets, not
    RCID: at per-head checkpoints RCID's term divides by each student head's imprint norm, which amplifies the two
    runs' summation-order differences (to 4.8e-5 in the weights here): that tests the objective's conditioning, not
    DDP."""
    return tiny_config(Method.INFORMED_FITNETS, batch_size=4)


def sweeps() -> dict[str, torch.Tensor]:
    """Every split sweep on the embedded teacher, with chunk sizes that leave a short last chunk."""
    model = load_model("world-gpt2")
    dataset = build_task(TaskSpec("ioi", n=6, seed=1), model.tokenizer, model.cfg.n_ctx)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(Site.Z, layer, "end", head) for layer in range(model.cfg.n_layers)
             for head in range(model.cfg.n_heads)]
    patch, _ = patch_sites(model, batch, sites, metric, rows_per_forward=7)
    ablations = [Ablation((Head(layer, 0), Head(layer, 1))) for layer in range(model.cfg.n_layers)]
    ko, _, _ = knockout(model, batch, ablations, metric, rows_per_forward=5)
    snap = sample_trials(world_relation_set().select(["antonym"]), model.tokenizer,
                         SamplingConfig(5, 2, 5, PromptFormat.COLON), "world-gpt2", model.cfg.n_ctx)
    heads = [Head(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    cie = relation_cie(model, snap.of("antonym"), heads, rows_per_forward=6)
    return {"patch": patch, "knockout": ko, "cie_logprob": cie.delta_logprob, "cie_p": cie.delta_p}


def _fail_on_one_rank(out: Path) -> None:
    import rcid_tl.distill.run as run
    from rcid_tl.cli.app import main
    from rcid_tl.errors import InputError

    def broken(*args, **kwargs):
        raise InputError(FAILURE)

    if int(os.environ["RANK"]) == FAILING_RANK:  # the others go on into the real function's collectives
        run.precompute_targets = broken
    sys.argv = ["rcid-tl", "distill", "--teacher", "world-gpt2", "-n", "16", "--steps", "2", "--batch-size", "4",
                "--top-k", "2", "--out", str(out)]
    main()


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    stop_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
    torch.set_num_threads(1)  # as the tests' own process (tests/conftest.py)
    set_progress(False)
    if scenario == "fail":
        _fail_on_one_rank(out)  # the CLI joins the group itself
        return
    with joined() as here:
        assert here.size == 2, here
        if scenario == "distill":
            run_distill(distill_config(), out, stop_after=stop_after)
        elif scenario == "sweeps":
            results = sweeps()
            results["shares"] = torch.tensor(map_shards(list(range(5)), lambda i: (here.rank, i), "shares"))
            if here.main:
                torch.save(results, out)


if __name__ == "__main__":
    main()
