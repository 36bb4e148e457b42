"""A frozen teacher's (Q, K, V) caches memoised per token sequence: a run revisits each training problem every epoch,
and the teacher, which never trains, would compute the same caches again each time."""

import torch
from jaxtyping import Bool, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.multiteacher.objective import QKV, read_qkv


class TeacherCache:
    """Per token sequence, the teacher's Q, K, V at its real positions ([layer, head, time, d_head] each), kept for
    the whole run; `batch` returns right-padded batch caches.

    Exactness: a batch with any unseen row is run through the teacher as it stands (the forward the objective would
    run), and each row's real positions are stored; a causal model's real positions do not depend on the padding or
    on the other rows (checked bit for bit in the tests). Padding positions come back as zeros instead of the
    teacher's values at pad tokens: the alignment gives them weight exactly 0, so nothing downstream reads them.
    Memory: n_problems × 3 × layers × heads × time × d_head floats (about 0.5 MB a problem for world-gpt2-cot)."""

    def __init__(self, teacher: TransformerBridge) -> None:
        self.teacher = teacher
        self.rows: dict[tuple[int, ...], QKV] = {}

    def batch(self, tokens: Int[Tensor, "batch time"], real: Bool[Tensor, "batch time"]) -> QKV:
        keys = [tuple(row[mask].tolist()) for row, mask in zip(tokens, real)]
        if any(key not in self.rows for key in keys):
            with torch.no_grad():
                _, *qkv = read_qkv(self.teacher, tokens)
            for b, key in enumerate(keys):
                self.rows.setdefault(key, tuple(x[b, :, :, : len(key)].clone() for x in qkv))
        out = []
        for kind in range(3):
            first = self.rows[keys[0]][kind]
            padded = first.new_zeros(len(keys), *first.shape[:2], tokens.shape[1], first.shape[3])
            for b, key in enumerate(keys):
                padded[b, :, :, : len(key)] = self.rows[key][kind]
            out.append(padded)
        return out[0], out[1], out[2]
