"""The four distillation methods of the method comparison and interchange-intervention training (IIT), each
L_KL + λ·term, as one module per run.

`Objective` knows which student activations its term needs, owns the frozen W* maps (Procrustes buffers) and any
learned FitNets regressors, and turns one student forward (plus, for IIT, one batched patched forward) and the
precomputed teacher targets into a loss.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import torch
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.procrustes import ProcrustesMap
from rcid_tl.consistency.checkpoints import Checkpoint
from rcid_tl.distill.interchange import Interchange, interchange_logits
from rcid_tl.distill.losses import fitnets_term, iit_term, informed_fitnets_term, kd_loss, rcid_term
from rcid_tl.distill.targets import TeacherTargets
from rcid_tl.errors import InputError, parse_choice
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import at_positions, capture
from rcid_tl.models.loading import namer
from rcid_tl.tasks.base import Batch


class Method(str, Enum):
    STANDARD_KD = "standard-kd"  # logits only
    FITNETS = "fitnets"  # every mapped layer, every token, full representation
    INFORMED_FITNETS = "informed-fitnets"  # h_clean at the causal checkpoints, through W*
    RCID = "rcid"  # normalised imprints d = h_clean − h_corrupt at the causal checkpoints, through W*
    IIT = "iit"  # output under interchange interventions at the causal checkpoints (Geiger et al. 2022)

    @property
    def uses_checkpoints(self) -> bool:
        return self in (Method.INFORMED_FITNETS, Method.RCID, Method.IIT)

    @property
    def uses_maps(self) -> bool:
        """Whether the term compares representations through W* (IIT compares outputs, so it needs none)."""
        return self in (Method.FITNETS, Method.INFORMED_FITNETS, Method.RCID)


def parse_method(value: str) -> Method:
    return parse_choice(Method, value, "method")


@dataclass(frozen=True)
class Pairing:
    """One matched pair of activations: teacher (site, layer) ↔ student (site, mapped layer), at a named position
    (checkpoint methods) or at every token (`position=None`, FitNets); at a per-head site (z), teacher head
    `teacher_head` ↔ student head `student_head`."""

    site: str
    teacher_layer: int
    student_layer: int
    position: str | None
    teacher_head: int | None = None
    student_head: int | None = None

    @property
    def key(self) -> str:  # ModuleDict keys may not contain dots
        head = "" if self.teacher_head is None else f"-{self.teacher_head}"
        return f"{self.site}-{self.teacher_layer}{head}"

    def teacher_part(self, act: Tensor) -> Tensor:
        """The teacher head's slice of a per-head activation (..., head, d_head); whole-vector sites unchanged."""
        return act if self.teacher_head is None else act[..., self.teacher_head, :]

    def student_part(self, act: Tensor) -> Tensor:
        return act if self.student_head is None else act[..., self.student_head, :]


def pairings_for(
    method: Method, checkpoints: Sequence[Checkpoint], layer_map: dict[int, int], n_student_layers: int,
    head_map: dict[tuple[int, int], int] | None = None,
) -> list[Pairing]:
    """The activation pairs `method` matches. FitNets pairs each student layer with the deepest teacher layer the
    map sends to it (Romero et al.'s hint/guided layers); the checkpoint methods use the checkpoints, a head
    checkpoint matched to the student head `head_map` gives (see `rcid_tl.alignment.heads`)."""
    if method is Method.STANDARD_KD:
        return []
    if method is Method.FITNETS:
        deepest = {s: max(t for t, s2 in layer_map.items() if s2 == s) for s in sorted(set(layer_map.values()))}
        return [Pairing(Site.RESID_POST.value, t, s, None) for s, t in deepest.items() if s < n_student_layers]
    if len({c.head is None for c in checkpoints}) > 1:
        raise InputError("checkpoints mix per-head (z) and whole-vector sites; a distillation run matches one kind")
    if any(c.head is not None for c in checkpoints) and head_map is None:
        raise InputError("head checkpoints need a head map")
    return [Pairing(c.site, c.layer, layer_map[c.layer], c.position, c.head,
                    None if c.head is None else head_map[c.layer, c.head]) for c in checkpoints]


class Objective(nn.Module):
    """L = L_KL + λ·term for one method. W* maps are frozen buffers (none for IIT); FitNets' regressors (if learned)
    are the only parameters here, initialised at W*.

    IIT's term uses every checkpoint on every step, all interchanges batched into one extra student forward of
    checkpoints × batch rows (no sampling of one checkpoint per step): its cost grows with --top-k."""

    def __init__(
        self, method: Method, pairings: Sequence[Pairing], maps: dict[str, ProcrustesMap], *, lam: float,
        temperature: float, learned_projection: bool = True, kl_all_tokens: bool = False,
    ) -> None:
        super().__init__()
        if method.uses_checkpoints and not pairings:
            raise InputError(f"{method.value} matches the student at causal checkpoints and none were given; "
                             f"give --checkpoints FILE or select more (--top-k, --max-saturation)")
        self.method, self.pairings, self.lam, self.temperature = method, list(pairings), lam, temperature
        self.kl_all_tokens = kl_all_tokens
        keys = sorted({p.key for p in self.pairings}) if method.uses_maps else []
        self.maps = nn.ModuleDict({k: maps[k] for k in keys})
        self.projections = nn.ModuleDict()
        if method is Method.FITNETS and learned_projection:
            for key, w in self.maps.items():
                linear = nn.Linear(w.d_student, w.d_teacher, bias=False)
                linear.weight.data.copy_(w.weight)
                self.projections[key] = linear

    def forward(
        self, student: TransformerBridge, batch: Batch, targets: TeacherTargets
    ) -> tuple[Tensor, dict[str, float]]:
        """The loss on one task batch (student forwards keep gradients) and its parts for the log."""
        width = batch.clean.shape[1]
        mask = torch.arange(width)[None, :] <= batch.answer_pos[:, None]  # (batch, pos): real tokens up to the answer
        both = self.method in (Method.RCID, Method.IIT)
        tokens = torch.cat([batch.clean, batch.corrupt]) if both else batch.clean  # one forward for clean + corrupt
        with capture(student, sorted(set(self._pair_names(student)))) as acts:
            logits = student(tokens.to(student.cfg.device))
        n = len(batch)
        if self.kl_all_tokens:
            kl = kd_loss(logits[:n], targets.logits, mask.to(logits.device), self.temperature)
        else:  # the task's output: the answer position alone (targets hold only that position)
            answer = at_positions(logits[:n], batch.answer_pos)[:, None]  # (batch, 1, d_vocab)
            kl = kd_loss(answer, targets.logits, torch.ones(n, 1, dtype=torch.bool, device=answer.device),
                         self.temperature)
        if self.method is Method.STANDARD_KD:
            return kl, {"kl": kl.item()}
        if self.method is Method.IIT:
            term = self._iit(student, [acts[name] for name in self._pair_names(student)], batch, targets, n)
        else:
            term = self._term([acts[name] for name in self._pair_names(student)], batch, targets, mask, n)
        loss = kl + self.lam * term
        return loss, {"kl": kl.item(), "term": term.item()}

    @torch.no_grad()
    def set_maps(self, maps: dict[str, ProcrustesMap]) -> None:
        """Replace the W* buffers in place (`--refit-every`); the learned FitNets regressors are left alone."""
        for key, w in self.maps.items():
            w.weight.copy_(maps[key].weight)

    def _pair_names(self, student: TransformerBridge) -> list[str]:
        names = namer(student)
        return [names.name(Site(p.site), p.student_layer) for p in self.pairings]

    def _term(self, acts: list[Tensor], batch: Batch, targets: TeacherTargets, mask: Tensor, n: int) -> Tensor:
        """The method's matching term; `acts[i]` is pairing i's student activation (batch or 2·batch rows)."""
        if self.method is Method.FITNETS:
            projections = [self.projections[p.key] if p.key in self.projections else self.maps[p.key]
                           for p in self.pairings]
            student = [a[:n] for a in acts]  # (batch, pos, d_s)
            return fitnets_term(student, list(targets.layers.unbind(2)), projections, mask.to(student[0].device))
        maps = [self.maps[p.key] for p in self.pairings]
        clean = [p.student_part(at_positions(a[:n], batch.position(p.position))) for a, p in zip(acts, self.pairings)]
        if self.method is Method.INFORMED_FITNETS:
            return informed_fitnets_term(clean, list(targets.states.unbind(1)), maps)
        corrupt = [p.student_part(at_positions(a[n:], batch.position(p.position)))
                   for a, p in zip(acts, self.pairings)]
        imprints = [c - k for c, k in zip(clean, corrupt)]  # (batch, d_s) each, with gradients
        return rcid_term(imprints, list(targets.imprints.unbind(1)), maps)

    def _iit(self, student: TransformerBridge, acts: list[Tensor], batch: Batch, targets: TeacherTargets,
             n: int) -> Tensor:
        """IIT's term: the student's clean run with each pairing's point set to the student's own value on the
        corrupt prompt (rows n: of `acts`, with gradients), matched to the teacher's interchanged output."""
        swaps = [Interchange(Site(p.site), p.student_layer, batch.position(p.position),
                             p.student_part(at_positions(a[n:], batch.position(p.position))), p.student_head)
                 for a, p in zip(acts, self.pairings)]
        patched = interchange_logits(student, batch.clean, batch.answer_pos, swaps)  # (batch, pairing, d_vocab)
        return iit_term(patched, targets.patched.to(patched.device), self.temperature)
