"""A learnable flat head/dim projection between student and teacher K/V (`KVDimensionProjector`):
per matched layer pair, the student's heads × d_head flattened and mapped linearly onto the teacher's, for caches in
the 5-D layout [batch, layer, head, time, d_head] (grouped K/V heads on GQA models count as the heads)."""

import torch
from jaxtyping import Float
from torch import Tensor, nn


class KVDimensionProjector(nn.Module):
    """Student cache → teacher cache layout, one linear map per layer pair (identity when the shapes agree).

    It projects the student, not the teacher: a learned map on the target side could shrink the teacher's cache
    towards zero and make an MSE vanish without the student learning anything (FitNets' regressor sits on the
    student for the same reason)."""

    def __init__(self, n_layers: int, student_heads: int, student_d_head: int, teacher_heads: int,
                 teacher_d_head: int) -> None:
        super().__init__()
        self.teacher_heads, self.teacher_d_head = teacher_heads, teacher_d_head
        self.same = (student_heads, student_d_head) == (teacher_heads, teacher_d_head)
        d_in, d_out = student_heads * student_d_head, teacher_heads * teacher_d_head
        self.maps = nn.ModuleList([] if self.same else [nn.Linear(d_in, d_out, bias=False) for _ in range(n_layers)])
        for linear in self.maps:  # start as a least-squares-friendly scaled random map, not as zero
            nn.init.normal_(linear.weight, std=d_in**-0.5)

    def forward(self, cache: Float[Tensor, "batch layer head time d_head"]
                ) -> Float[Tensor, "batch layer t_head time t_d_head"]:
        if self.same:
            return cache
        b, n_layers, h, t, d = cache.shape
        flat = cache.permute(0, 1, 3, 2, 4).reshape(b, n_layers, t, h * d)  # heads side by side per token
        out = torch.stack([m(flat[:, i]) for i, m in enumerate(self.maps)], 1)  # (batch, layer, time, H_t·D_t)
        return out.view(b, n_layers, t, self.teacher_heads, self.teacher_d_head).permute(0, 1, 3, 2, 4)
