"""Brief fine-tuning of CausalQwen on token rows with its OvR loss, and per-mode next-token scores.

The uncertainty parameters start far from useful OvR decisions (scale_U = γ_init = 10, thresholds 0, so every
P_OvR ≈ ½) and get a larger learning rate so that a short run moves them; everything that starts as the pretrained
language model (transformer, identity loc_net, copied lm_head) keeps a small one, or the run would unlearn it.
"""

from dataclasses import asdict, dataclass

import torch
from jaxtyping import Int
from torch import Tensor

from rcid_tl.causalqwen.modeling import CausalQwenForCausalLM
from rcid_tl.errors import InputError
from rcid_tl.training import TrainLog, train


_UNCERTAINTY_PARAMETERS = ("abduction_network.scale_net.", "action_network.b_noise", "ovr_classifier.thresholds")


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 200
    batch_size: int = 8
    head_lr: float = 1e-1  # the uncertainty parameters: scale_net, b_noise, OvR thresholds
    backbone_lr: float = 0.0  # everything with a pretrained value: transformer, identity loc_net, lm_head
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise InputError(f"steps and batch_size must be ≥ 1, got {self.steps} and {self.batch_size}")

    def to_dict(self) -> dict:
        return asdict(self)


def finetune(model: CausalQwenForCausalLM, rows: Int[Tensor, "row pos"], config: FinetuneConfig) -> list[float]:
    """AdamW on the OvR loss over `rows` (cycled in order, batch after batch); returns the loss of every step."""
    if len(rows) < config.batch_size:
        raise InputError(f"need at least batch_size={config.batch_size} rows, got {len(rows)}")
    torch.manual_seed(config.seed)
    fast = [p for n, p in model.named_parameters() if n.startswith(_UNCERTAINTY_PARAMETERS)]
    slow = [p for n, p in model.named_parameters() if not n.startswith(_UNCERTAINTY_PARAMETERS)]
    groups = [{"params": fast, "lr": config.head_lr}]
    if config.backbone_lr > 0:
        groups.append({"params": slow, "lr": config.backbone_lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    opt.zero_grad(set_to_none=True)
    model.train()
    n_batches = len(rows) // config.batch_size

    def loss_at(step: int) -> tuple[Tensor, dict[str, float]]:
        batch = rows[(step % n_batches) * config.batch_size:][:config.batch_size].to(model.device)
        return model(batch, labels=batch).loss, {}

    losses: list[float] = []
    # a window of one step: its mean is that step's loss; nothing is written
    every_step = TrainLog(None, 1, lambda done, window, lr, elapsed: losses.append(window["loss"]))
    train(loss_at, model, opt, None, steps=config.steps, grad_clip=config.grad_clip, desc="fine-tuning CausalQwen",
          log=every_step)
    model.eval()
    return losses


@torch.no_grad()
def next_token_scores(model: CausalQwenForCausalLM, rows: Int[Tensor, "row pos"]) -> dict[str, float]:
    """Held-out OvR loss, and next-token accuracy of the standard (argmax P_OvR) and compatible (argmax loc_S)
    decisions, plus the mean P_OvR of the true next token and of the most likely wrong one."""
    rows = rows.to(model.device)
    out = model(rows, labels=rows, inference_mode="standard")
    target = rows[:, 1:]
    probs = out.ovr_probs[:, :-1]
    true_p = probs.gather(-1, target[..., None])[..., 0]
    wrong_p = probs.scatter(-1, target[..., None], 0.0).amax(-1)
    return {
        "ovr_loss": float(out.loss / model.config.classification_loss_weight),
        "standard_accuracy": float((probs.argmax(-1) == target).float().mean()),
        "compatible_accuracy": float((out.loc_S[:, :-1].argmax(-1) == target).float().mean()),
        "mean_p_ovr_next": float(true_p.mean()),
        "mean_p_ovr_best_wrong": float(wrong_p.mean()),
    }
