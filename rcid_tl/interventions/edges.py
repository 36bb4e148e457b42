"""Edge attribution for circuit discovery: EAP (Syed et al. 2023, arXiv:2310.10348) and EAP-IG (Hanna et al. 2024,
arXiv:2403.17806) between the embeddings, attention heads, MLPs and the logits.

An edge u → v carries u's output a_u (written into the residual stream) into v's input x_v (what v alone reads from
the residual stream: a head's query, key or value input, an MLP's input, the logits' input). Patching only that edge
from the source run changes the metric by ≈ (a_u,src − a_u,tgt) · ∂metric/∂x_v, summed over positions. EAP takes the
gradient at the target run; EAP-IG averages it over m runs whose embeddings go from the source's to the target's
(α = 1/m, …, 1), so m = 1 is EAP. Gradients come from one forward and backward per step on the project's
gradient-keeping capture (`read.capture`; run_with_cache detaches). A head's own input gradient is the vector-Jacobian
product of its query (key, value) gradient back through its projection and the block's first norm.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions.read import answer_forward, cache_hooks, capture
from rcid_tl.interventions.write import Direction
from rcid_tl.metrics import Metric
from rcid_tl.tasks.base import Batch


@dataclass(frozen=True)
class EdgeScores:
    """Estimated metric change when each edge alone carries the source run's value into the target run (mean over
    examples); zero, and not `valid`, where u does not precede v."""

    upstream: tuple[str, ...]  # "input", "a{layer}.{head}", "m{layer}"
    downstream: tuple[str, ...]  # "a{layer}.{head}<q>", "a{layer}.{kv_head}<k>", "…<v>", "m{layer}", "logits"
    scores: Float[Tensor, "upstream downstream"]
    valid: Bool[Tensor, "upstream downstream"]
    ig_steps: int

    def top(self, k: int) -> list[tuple[str, str, float]]:
        """The k valid edges with the largest |score|, largest first."""
        flat = self.scores.abs().masked_fill(~self.valid, -1).flatten()
        best = flat.topk(min(k, int(self.valid.sum()))).indices
        width = len(self.downstream)
        return [(self.upstream[i // width], self.downstream[i % width], float(self.scores.flatten()[i]))
                for i in best.tolist()]


def nodes(model: TransformerBridge) -> tuple[tuple[str, ...], tuple[str, ...], Tensor]:
    """Upstream names, downstream names and the (upstream, downstream) mask of edges that exist (u before v)."""
    cfg = model.cfg
    kv = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
    up, up_order, down, down_order = ["input"], [-1], [], []
    for layer in range(cfg.n_layers):
        up += [f"a{layer}.{h}" for h in range(cfg.n_heads)] + [f"m{layer}"]
        up_order += [2 * layer] * cfg.n_heads + [2 * layer + 1]
        heads = [f"a{layer}.{h}<q>" for h in range(cfg.n_heads)]
        heads += [f"a{layer}.{g}<{kind}>" for kind in "kv" for g in range(kv)]
        down += heads + [f"m{layer}"]
        down_order += [2 * layer] * len(heads) + [2 * layer + 1]
    down.append("logits")
    down_order.append(2 * cfg.n_layers)
    valid = torch.tensor(up_order)[:, None] < torch.tensor(down_order)[None, :]
    return tuple(up), tuple(down), valid


def edge_attribution(
    model: TransformerBridge, batch: Batch, metric: Metric, direction: Direction = Direction.NOISING,
    ig_steps: int = 1,
) -> EdgeScores:
    """EAP (`ig_steps` = 1) or EAP-IG (m = `ig_steps` integration steps) scores of every edge, for patching edges
    from the source run (corrupt when noising) into the target run. Costs one source forward and `ig_steps` target
    forwards and backwards, whatever the number of edges."""
    if ig_steps < 1:
        raise InputError(f"ig_steps must be ≥ 1, got {ig_steps}")
    n_layers = model.cfg.n_layers
    noising = Direction(direction) is Direction.NOISING
    source_tokens, target_tokens = (batch.corrupt, batch.clean) if noising else (batch.clean, batch.corrupt)
    outputs = [hook_name(Site.RESID_PRE, 0)] + [hook_name(s, layer) for layer in range(n_layers)
                                                for s in (Site.Z, Site.MLP_OUT)]
    _, source = cache_hooks(model, source_tokens, outputs, batch.answer_pos)
    grads: list[Tensor] = []
    for step in range(1, ig_steps + 1):
        step_grads, target = _input_gradients(model, target_tokens, batch, metric, source[outputs[0]],
                                              step / ig_steps, outputs)
        grads = step_grads if not grads else [g + s for g, s in zip(grads, step_grads)]
    up, down, valid = nodes(model)
    delta = _output_differences(model, source, target)  # (upstream, batch, pos, d_model)
    scores = torch.cat([torch.einsum("ubpd,vbpd->uv", delta, g / ig_steps) for g in grads], dim=1) / len(batch)
    return EdgeScores(up, down, scores.cpu().masked_fill(~valid, 0.0), valid, ig_steps)


def _input_gradients(model, tokens, batch, metric, source_embed, alpha, outputs):
    """One run with the block-0 input at source + α·(target − source): per layer, ∂metric/∂(each head's q, k, v
    input) stacked (heads, batch, pos, d_model) then each MLP's input gradient, then the logits' input gradient; and,
    at α = 1 (the target run itself), the nodes' outputs."""
    n_layers = model.cfg.n_layers
    pre = [hook_name(Site.RESID_PRE, layer) for layer in range(n_layers)]
    mid = [hook_name(Site.RESID_MID, layer) for layer in range(n_layers)]
    post = [hook_name(Site.RESID_POST, layer) for layer in range(n_layers)]
    qkv = [hook_name(s, layer) for layer in range(n_layers) for s in (Site.Q, Site.K, Site.V)]

    def interpolate(act: Tensor, hook) -> Tensor:  # a leaf, so no parameter gradient is ever computed
        source = source_embed.to(act.device, act.dtype)
        return (source + alpha * (act.detach() - source)).requires_grad_(True)

    names = sorted(set(pre + mid + post + qkv + outputs))
    with torch.enable_grad(), model.hooks(fwd_hooks=[(pre[0], interpolate)]), capture(model, names) as acts:
        value = metric(answer_forward(model, tokens, batch.answer_pos), batch).sum()  # examples are independent
        wanted = qkv + mid + post
        found = dict(zip(wanted, torch.autograd.grad(value, [acts[n] for n in wanted], retain_graph=True)))
        per_layer = []
        for layer in range(n_layers):
            heads = [_per_head_input_gradient(acts[qkv[3 * layer + i]], found[qkv[3 * layer + i]], acts[pre[layer]])
                     for i in range(3)]
            mlp = (found[mid[layer]] - found[post[layer]])[None]  # resid_post = resid_mid + mlp(resid_mid)
            per_layer.append(torch.cat([*heads, mlp]).detach())
        per_layer.append(found[post[-1]][None].detach())
        kept = {n: acts[n].detach() for n in outputs} if alpha == 1 else None
    return per_layer, kept


def _per_head_input_gradient(act: Tensor, grad: Tensor, resid: Tensor) -> Tensor:
    """For each head of `act` (batch, pos, head, d_head), ∂metric/∂resid through that head's slice alone: the
    head-masked gradient pulled back through the (linear) projection and the norm in one batched VJP."""
    n = act.shape[2]
    mask = torch.eye(n, dtype=grad.dtype, device=grad.device)[:, None, None, :, None]  # (head, 1, 1, head, 1)
    return torch.autograd.grad(act, resid, grad_outputs=mask * grad[None], retain_graph=True,
                               is_grads_batched=True)[0]


def _output_differences(model, source: dict, target: dict) -> Tensor:
    """a_src − a_tgt for every upstream node, in `nodes` order: the embeddings, each head's z through its slice of
    W_O (the output bias belongs to no head, and cancels in the difference anyway), each MLP's output."""
    embed = hook_name(Site.RESID_PRE, 0)
    w_o = model.W_O.detach()  # (layer, head, d_head, d_model)
    parts = [(source[embed] - target[embed])[None]]
    for layer in range(model.cfg.n_layers):
        z = source[hook_name(Site.Z, layer)] - target[hook_name(Site.Z, layer)]
        parts.append(torch.einsum("bphd,hdm->hbpm", z, w_o[layer].to(z.dtype)))
        parts.append((source[hook_name(Site.MLP_OUT, layer)] - target[hook_name(Site.MLP_OUT, layer)])[None])
    return torch.cat(parts)
