"""The OvR training loss."""

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from rcid_tl.causalqwen.cauchy import CauchyMath

IGNORE_INDEX = -100


def ovr_loss(
    loc_S: Float[Tensor, "batch pos d_vocab"],
    scale_S: Float[Tensor, "batch pos d_vocab"],
    thresholds: Float[Tensor, " d_vocab"],
    labels: Int[Tensor, "batch pos"],
    ignore_index: int = IGNORE_INDEX,
) -> Float[Tensor, ""]:
    """Binary cross-entropy of every token's one-vs-rest probability against "is it the next token".

    Position t is scored against labels[t + 1] (labels are the input ids, as in Hugging Face causal LMs); targets
    equal to `ignore_index` are skipped. The mean runs over the kept (position, vocabulary entry) pairs, the seed's
    `reduction='mean'`. Both log-probabilities come from `CauchyMath.log_survival_pair`, so a confident wrong
    answer costs a large finite amount instead of log(0).
    """
    target = labels[:, 1:]
    kept = target != ignore_index
    loc, scale, target = loc_S[:, :-1][kept], scale_S[:, :-1][kept], target[kept]  # (n, d_vocab), (n,)
    if target.numel() == 0:
        return loc_S.sum() * 0.0  # keeps the graph (and a zero gradient) for batches with nothing to learn
    log_on, log_off = CauchyMath.log_survival_pair(loc, scale, thresholds)
    is_next = F.one_hot(target, loc.shape[-1]).bool()
    return -torch.where(is_next, log_on, log_off).mean()
