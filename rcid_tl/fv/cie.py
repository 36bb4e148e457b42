"""CIE engine (Todd et al.): mean clean head outputs at the last token, and the causal indirect effect (CIE) of
patching each head's mean into the corrupted (shuffled-label) prompts — batched, relation prompts × heads as rows.
Each row runs on the exact sweep engine (`interventions.engine.run_rows`): it resumes at its head's layer from the
unpatched corrupted run and computes the last position only, reading earlier positions' keys/values from that run.

CIE(q, ℓ, h) = mean over q's trials of [metric(corrupted, z_ℓh[last] := mean clean z_ℓh[last]) − metric(corrupted)],
metric = log p(target first token) (primary, `mean_delta_logprob`) or p (`mean_delta_p`; Todd et al. 2024's CIE).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.fv.scoring import TargetScores, padded, score_rows, targets
from rcid_tl.fv.trials import Trial
from rcid_tl.hooks.names import Head, Site
from rcid_tl.interventions.engine import Rows, reference_run, run_rows
from rcid_tl.interventions.hook_fns import set_at_hook
from rcid_tl.interventions.read import at_positions, cache_hooks
from rcid_tl.interventions.write import Engine
from rcid_tl.models.loading import namer
from rcid_tl.parallel import map_shards


@torch.no_grad()
def mean_last_token_z(
    model: TransformerBridge, seqs: Sequence[Sequence[int]], layers: Sequence[int], rows_per_forward: int = 64
) -> Float[Tensor, "layer head d_head"]:
    """Each head's output before W_O (`hook_z`) at each prompt's last token, averaged over the prompts (Todd et al.'s
    ā_ℓj); rows for layers not in `layers` are zero."""
    names = namer(model)
    hook_of = {layer: names.name(Site.Z, layer) for layer in layers}
    total = torch.zeros(model.cfg.n_layers, model.cfg.n_heads, model.cfg.d_head)
    tokens, last = padded(model, seqs)
    for chunk in torch.arange(len(seqs)).split(rows_per_forward):
        width = int(last[chunk].max()) + 1
        _, cache = cache_hooks(model, tokens[chunk, :width], list(hook_of.values()), last[chunk])
        for layer, name in hook_of.items():
            total[layer] += at_positions(cache[name], last[chunk]).float().sum(0).cpu()
    return total / len(seqs)


def mean_patch_hooks(
    model: TransformerBridge, heads: Sequence[Head], mean_z: Float[Tensor, "layer head d_head"], n_prompts: int
):
    """A HookPlan for rows r = head_index · n_prompts + prompt: row r gets head `heads[r // n_prompts]`'s `hook_z`
    at its last token set to that head's mean. One hook per layer, each editing only the rows it owns."""
    names = namer(model)
    layer_of = torch.tensor([h.layer for h in heads])
    head_of = torch.tensor([h.head for h in heads])

    def plan(rows: Int[Tensor, " rows"], last: Int[Tensor, " rows"]) -> list:
        which = rows // n_prompts
        hooks = []
        for layer in layer_of[which].unique().tolist():
            local = (layer_of[which] == layer).nonzero().flatten()
            hh = head_of[which[local]]
            hooks.append((names.name(Site.Z, layer), set_at_hook(local, last[local], mean_z[layer, hh], heads=hh)))
        return hooks

    return plan


@dataclass(frozen=True)
class RelationCIE:
    """One relation's CIE-sweep numbers: per-trial baselines and per-(trial, head) gains over the corrupted prompt."""

    q_id: str
    heads: tuple[Head, ...]
    mean_z: Float[Tensor, "layer head d_head"]
    clean: TargetScores
    corrupted: TargetScores
    delta_logprob: Float[Tensor, "swept_head trial"]
    delta_p: Float[Tensor, "swept_head trial"]

    @property
    def n_trials(self) -> int:
        return self.delta_logprob.shape[1]


def relation_cie(
    model: TransformerBridge, trials: Sequence[Trial], heads: Sequence[Head], rows_per_forward: int = 128,
    engine: Engine = Engine.RESUME,
) -> RelationCIE:
    """The CIE sweep for one relation: clean mean z, then every (head, trial) patch in batched forwards — resumed rows
    (`Engine.RESUME`), or whole forwards from token ids (`Engine.FULL`, the reference the fast path is tested
    against; also used when the model's logits do not come from its final norm and unembedding)."""
    layers = sorted({h.layer for h in heads})
    clean_seqs = [t.clean_ids for t in trials]
    corrupted_seqs = [t.corrupted_ids for t in trials]
    mean_z = mean_last_token_z(model, clean_seqs, layers)
    target = targets(trials)
    n = len(trials)
    each = torch.arange(n)
    clean = score_rows(model, clean_seqs, each, target, rows_per_forward=rows_per_forward)
    rows = torch.arange(len(heads) * n)  # row r: head r // n, trial r % n
    plan = mean_patch_hooks(model, heads, mean_z, n)
    tokens, last = padded(model, corrupted_seqs)
    ref = reference_run(model, tokens, last) if Engine(engine) is Engine.RESUME else None
    if ref is not None and ref.reproduces_head:
        corrupted = TargetScores.of(ref.logits, target)
        layer_of = torch.tensor([h.layer for h in heads])[rows // n]
        stacked = run_rows(
            model, ref, Rows(layer_of, rows % n, last[rows % n], last[rows % n] + 1, last[rows % n]),
            lambda chunk, first: plan(chunk, last[chunk % n] - first),
            lambda chunk, logits: _stacked(TargetScores.of(logits, target[chunk % n])), rows_per_forward, "CIE")
        patched = TargetScores(*stacked.unbind(1))
    else:
        corrupted = score_rows(model, corrupted_seqs, each, target, rows_per_forward=rows_per_forward)
        patched = _patched_scores(model, corrupted_seqs, rows, target, plan, rows_per_forward)
    delta_lp = (patched.logprob - corrupted.logprob[rows % n]).view(len(heads), n)
    delta_p = (patched.prob - corrupted.prob[rows % n]).view(len(heads), n)
    return RelationCIE(trials[0].q_id, tuple(heads), mean_z, clean, corrupted, delta_lp, delta_p)


def _stacked(scores: TargetScores) -> Tensor:
    return torch.stack([scores.logprob, scores.prob, scores.top1], 1)  # (rows, 3): one tensor per chunk


def _patched_scores(model: TransformerBridge, seqs: Sequence[Sequence[int]], rows: Tensor, target: Tensor,
                    plan, rows_per_forward: int) -> TargetScores:
    """`score_rows` of the patched rows, its chunks shared out across processes under torchrun (`map_shards`).
    The chunks are score_rows' own (rows sorted by prompt length, stably, then split), and each is scored as one
    forward with the plan's global row indices, so every chunk is the forward a single process would run."""
    n = len(seqs)
    lengths = torch.tensor([len(s) for s in seqs])
    chunks = torch.argsort(lengths[rows % n], stable=True).split(rows_per_forward)

    def score(chunk: Tensor) -> TargetScores:
        return score_rows(model, seqs, chunk % n, target[chunk % n], lambda local, last: plan(chunk[local], last),
                          rows_per_forward)

    return TargetScores.cat(map_shards(chunks, score, "CIE")).placed(torch.cat(chunks))


def patched_one(
    model: TransformerBridge, trial: Trial, head: Head, mean_z: Float[Tensor, "layer head d_head"]
) -> TargetScores:
    """One trial, one head, one forward: the per-head, per-trial loop of the reference implementation (used by the
    benchmark and tests to check the batched sweep)."""
    one = torch.zeros(1, dtype=torch.long)
    return score_rows(model, [trial.corrupted_ids], one, targets([trial]),
                      mean_patch_hooks(model, [head], mean_z, 1), rows_per_forward=1)
