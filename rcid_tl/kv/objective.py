"""The KV distillation objective: next-token CE on the chain-of-thought tokens plus the weighted KV, CKA/contrastive
and CODI terms, from one teacher forward (no gradients) and one student forward (with gradients) per batch."""

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Int
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.layers import deepest_teacher_layers, proportional_layer_map
from rcid_tl.distill.losses import check_finite
from rcid_tl.kv.capture import KVStates, kv_heads, read_kv
from rcid_tl.kv.cka import cka_loss, contrastive_alignment_loss, select_layers
from rcid_tl.kv.codi import before_answer, codi_loss
from rcid_tl.kv.compression import rkv_keep
from rcid_tl.kv.config import Alignment, KVConfig
from rcid_tl.kv.losses import AttentionWeighting, kv_loss, token_importance, uniform_weights
from rcid_tl.kv.projection import KVDimensionProjector
from rcid_tl.world.cot import Segment

log = logging.getLogger(__name__)
CKA_ROWS = 256  # tokens per CKA/contrastive term: the Gram matrices are n × n, so cap n ("n not large")


@dataclass(frozen=True)
class SegmentBatch:
    """Token rows with each token's segment (`rcid_tl.world.cot.Segment`) and whether it is real (not padding)."""

    tokens: Int[Tensor, "batch time"]
    segments: Int[Tensor, "batch time"]
    real: Bool[Tensor, "batch time"]

    @property
    def answer_start(self) -> Int[Tensor, " batch"]:
        """Each row's first answer token."""
        return ((self.segments == Segment.ANSWER) & self.real).int().argmax(-1)


def deepest_pairs(n_teacher: int, n_student: int) -> dict[int, int]:
    """Student layer → the deepest teacher layer the proportional map sends to it (FitNets' hint layers)."""
    return deepest_teacher_layers(proportional_layer_map(n_teacher, n_student))


class KVObjective(nn.Module):
    """CE + λ_KV·KV + λ_CKA·(1 − CKA) (or contrastive) + λ_CODI·CODI for one teacher/student pair; owns the
    learned projections (KV heads/dims, CODI and contrastive widths) and the attention-weighting schedule."""

    def __init__(self, teacher: TransformerBridge, student: TransformerBridge, config: KVConfig,
                 log_every: int = 10) -> None:
        super().__init__()
        t, s = teacher.cfg, student.cfg
        self.config, self.log_every = config, log_every
        self.pairs = deepest_pairs(t.n_layers, s.n_layers)
        self.kv_students = sorted(self.pairs)
        self.cka_layers = select_layers(config.cka_layers, s.n_layers) if config.cka_weight > 0 else []
        self.codi_layers = select_layers(config.codi_layers, s.n_layers) if config.codi_weight > 0 else []
        self.k_projector = KVDimensionProjector(len(self.kv_students), kv_heads(student), s.d_head, kv_heads(teacher),
                                                 t.d_head)
        self.v_projector = KVDimensionProjector(len(self.kv_students), kv_heads(student), s.d_head, kv_heads(teacher),
                                                t.d_head)
        width = lambda: nn.Linear(s.d_model, t.d_model, bias=False)  # noqa: E731
        self.codi_maps = nn.ModuleList([width() for _ in self.codi_layers])
        contrastive = config.alignment is Alignment.CONTRASTIVE
        self.align_maps = nn.ModuleList([width() for _ in self.cka_layers] if contrastive else [])
        self.weighting = AttentionWeighting(config.attention_weighted, config.attention_warmup,
                                            config.use_teacher_attention)
        self.n_teacher_layers, self.n_student_layers = t.n_layers, s.n_layers

    def _states(self, teacher: TransformerBridge, student: TransformerBridge, batch: SegmentBatch
                ) -> tuple[KVStates | None, KVStates]:
        c = self.config
        hidden = sorted(set(self.cka_layers) | set(self.codi_layers))
        if c.kv_weight == 0 and not hidden:  # plain CE: nothing reads the teacher
            return None, read_kv(student, batch.tokens, self.kv_students)
        want_t_attn = c.compression is not None or (c.attention_weighted and c.use_teacher_attention)
        want_s_attn = c.attention_weighted and not c.use_teacher_attention
        with torch.no_grad():
            t_states = read_kv(teacher, batch.tokens, [self.pairs[s] for s in self.kv_students],
                               attention_layer=self.n_teacher_layers - 1 if want_t_attn else None,
                               hidden_layers=[self.pairs[s] for s in hidden], grad=False)
        s_states = read_kv(student, batch.tokens, self.kv_students,
                           attention_layer=self.n_student_layers - 1 if want_s_attn else None,
                           hidden_layers=hidden)
        return t_states, s_states

    def kept_tokens(self, t_states: KVStates, batch: SegmentBatch) -> Bool[Tensor, "batch time"]:
        """The teacher-cache tokens the student matches: all real ones, or with compression the prompt and answer
        plus the R-KV-selected reasoning tokens."""
        real = batch.real.to(t_states.keys.device)
        if self.config.compression is None:
            return real
        reasoning = real & (batch.segments.to(real.device) == Segment.REASONING)
        keys = t_states.keys[:, -1].transpose(1, 2).flatten(2)  # last matched layer, (batch, time, heads·d_head)
        importance = token_importance(t_states.attention, real)
        keep = rkv_keep(importance, keys, reasoning, self.config.compression, self.config.compression_mix)
        return (real & ~reasoning) | keep

    def forward(self, teacher: TransformerBridge, student: TransformerBridge, batch: SegmentBatch, step: int
                ) -> tuple[Tensor, dict[str, float]]:
        """The loss at training step `step` (0-based; decides the warm-up) and its parts for the log."""
        c = self.config
        t_states, s_states = self._states(teacher, student, batch)
        ce = next_token_ce(s_states.logits, batch)
        loss, parts = ce, {"ce": ce.item()}
        if c.kv_weight > 0:
            keep = self.kept_tokens(t_states, batch).to(ce.device)
            kv = self.kv_term(t_states, s_states, keep, weighted=self.weighting.active(step))
            loss = loss + c.kv_weight * kv
            parts |= {"kv": kv.item(), "attn_weighted": float(self.weighting.active(step)),
                      "kept_tokens": keep.sum(-1).float().mean().item()}
        if self.cka_layers:
            align = self.alignment(t_states, s_states, batch)
            loss = loss + c.cka_weight * align
            parts[c.alignment.value] = align.item()
        if self.codi_layers:
            codi = self.codi(t_states, s_states, batch)
            loss = loss + c.codi_weight * codi
            parts["codi"] = codi.item()
        if (step + 1) % self.log_every == 0:
            log.info("%s", log_line(step + 1, loss.item(), parts, self.weighting.label(step)))
        return check_finite("total", loss), parts

    def raw_terms(self, teacher: TransformerBridge, student: TransformerBridge, batch: SegmentBatch
                  ) -> dict[str, Tensor]:
        """Every term this objective can compute on one batch, unweighted: CE, the plain and the attention-weighted
        KV loss, and the alignment and CODI terms when their layers are set (for diagnosing loss scales)."""
        t_states, s_states = self._states(teacher, student, batch)
        keep = self.kept_tokens(t_states, batch).to(s_states.logits.device)
        terms = {"ce": next_token_ce(s_states.logits, batch),
                 "kv": self.kv_term(t_states, s_states, keep, weighted=False),
                 "kv_weighted": self.kv_term(t_states, s_states, keep, weighted=True)}
        if self.cka_layers:
            terms[self.config.alignment.value] = self.alignment(t_states, s_states, batch)
        if self.codi_layers:
            terms["codi"] = self.codi(t_states, s_states, batch)
        return terms

    def kv_term(self, t_states: KVStates, s_states: KVStates, keep: Tensor, weighted: bool) -> Tensor:
        """The mean of the K and V losses over the kept tokens, uniform or weighted by the configured attention."""
        device = keep.device
        weights = uniform_weights(keep)
        if weighted:
            source = t_states if self.config.use_teacher_attention else s_states
            weights = token_importance(source.attention.to(device), keep)
        s_k, s_v = self.k_projector(s_states.keys), self.v_projector(s_states.values)
        t_k, t_v = t_states.keys.to(device), t_states.values.to(device)
        kind = self.config.kv_loss
        return (kv_loss(s_k, t_k, weights, kind) + kv_loss(s_v, t_v, weights, kind)) / 2

    def codi(self, t_states: KVStates, s_states: KVStates, batch: SegmentBatch) -> Tensor:
        start, device = batch.answer_start, s_states.logits.device
        return codi_loss([before_answer(s_states.hidden[s], start) for s in self.codi_layers],
                         [before_answer(t_states.hidden[self.pairs[s]], start).to(device) for s in self.codi_layers],
                         list(self.codi_maps))

    def alignment(self, t_states: KVStates, s_states: KVStates, batch: SegmentBatch) -> Tensor:
        """1 − CKA (or the contrastive loss) on the real tokens of each selected layer pair, at most CKA_ROWS."""
        rows = batch.real.flatten().nonzero().squeeze(1)[:CKA_ROWS]
        student = [s_states.hidden[s].flatten(0, 1)[rows.to(s_states.logits.device)] for s in self.cka_layers]
        teacher = [t_states.hidden[self.pairs[s]].flatten(0, 1)[rows].to(student[0].device) for s in self.cka_layers]
        if self.config.alignment is Alignment.CONTRASTIVE:
            return contrastive_alignment_loss([m(x) for m, x in zip(self.align_maps, student)], teacher)
        return cka_loss(student, teacher)


def next_token_ce(logits: Tensor, batch: SegmentBatch) -> Tensor:
    """Mean next-token cross-entropy on the real reasoning and answer tokens (the prompt is given, not learned)."""
    targets = batch.tokens[:, 1:].to(logits.device)
    learned = (batch.real[:, 1:] & (batch.segments[:, 1:] != Segment.PROMPT)).to(logits.device)
    per_token = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), reduction="none")
    return check_finite("CE", (per_token * learned.flatten()).sum() / learned.sum().clamp(min=1))


def log_line(step: int, loss: float, parts: dict[str, float], state: str) -> str:
    """The KV recipe's progress line: `Step 500: loss=2.3123, CE=1.8000, KV=0.3200, CODI=0.1690, CKA=0.7233 [state]`."""
    names = {"ce": "CE", "kv": "KV", "codi": "CODI", "cka": "CKA", "contrastive": "Contrastive"}
    shown = ", ".join(f"{label}={parts[key]:.4f}" for key, label in names.items() if key in parts)
    return f"Step {step}: loss={loss:.4f}, {shown}" + (f" [{state}]" if state else "")
