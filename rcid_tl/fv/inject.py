"""FV injection (Todd et al.): h_ℓ[last] := h_ℓ[last] + α·FV at the block output (`resid_post`) of layer ℓ,
batched: every row is one (vector, layer, α, prompt) combination, one hook per layer editing only its rows."""

from collections.abc import Sequence
from dataclasses import dataclass

from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.fv.scoring import TargetScores, score_rows
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.hook_fns import add_at_hook
from rcid_tl.models.loading import namer


@dataclass(frozen=True)
class InjectionRows:
    """Row r scores prompt `prompt[r]` with `vector[r]` · `alpha[r]` added at layer `layer[r]`'s last token."""

    prompt: Int[Tensor, " rows"]
    layer: Int[Tensor, " rows"]
    alpha: Float[Tensor, " rows"]
    vector: Int[Tensor, " rows"]  # index into the stacked vectors

    def __len__(self) -> int:
        return len(self.prompt)


def add_vector_hooks(model: TransformerBridge, rows: InjectionRows, vectors: Float[Tensor, "vector d_model"]):
    """A HookPlan adding α·v to the residual stream after each row's layer, at that row's last token."""
    names = namer(model)

    def plan(chunk: Int[Tensor, " chunk"], last: Int[Tensor, " chunk"]) -> list:
        hooks = []
        for layer in rows.layer[chunk].unique().tolist():
            local = (rows.layer[chunk] == layer).nonzero().flatten()
            mine = chunk[local]
            delta = rows.alpha[mine, None] * vectors[rows.vector[mine]]
            hooks.append((names.name(Site.RESID_POST, layer), add_at_hook(local, last[local], delta)))
        return hooks

    return plan


def injected_scores(
    model: TransformerBridge,
    seqs: Sequence[Sequence[int]],
    target_of_prompt: Int[Tensor, " prompt"],
    rows: InjectionRows,
    vectors: Float[Tensor, "vector d_model"],
    rows_per_forward: int = 128,
) -> TargetScores:
    """Target first-token scores of every injection row."""
    return score_rows(model, seqs, rows.prompt, target_of_prompt[rows.prompt], add_vector_hooks(model, rows, vectors),
                      rows_per_forward, "injection")
