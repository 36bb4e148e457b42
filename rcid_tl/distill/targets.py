"""What the teacher contributes to distillation, computed once under no_grad and stored detached (seed §5.4):
clean logits, and per pairing the clean state, the imprint d_T = h_clean − h_corrupt and (IIT) the answer logits
with the pairing's activation interchanged from the corrupt prompt; plus the frozen W* maps
fitted between student and teacher activations (seed §5.3). Under torchrun the processes share the teacher's
forwards and each ends with all of the targets."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.procrustes import ProcrustesMap
from rcid_tl.distill.interchange import Interchange, interchange_logits
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import at_positions
from rcid_tl.models.loading import namer
from rcid_tl.parallel import map_shards
from rcid_tl.tasks.base import ContrastiveDataset


@dataclass(frozen=True)
class TeacherTargets:
    """Rows align with the dataset's examples; token axes are padded to the longest example."""

    logits: Float[Tensor, "n pos d_vocab"]  # every token, or only the answer position (pos = 1)
    states: Float[Tensor, "n pairing d_t"]  # h_clean at each checkpoint pairing (empty for FitNets / KD)
    imprints: Float[Tensor, "n pairing d_t"]  # d_T at each checkpoint pairing
    layers: Float[Tensor, "n pos pairing d_t"]  # every-token states for FitNets pairings
    patched: Float[Tensor, "n pairing d_vocab"]  # IIT: answer logits, clean with the pairing's point from corrupt

    def take(self, rows: Tensor, width: int) -> "TeacherTargets":
        """The targets of `rows`, token axes cut to a batch `width`."""
        return TeacherTargets(self.logits[rows, :width], self.states[rows], self.imprints[rows],
                              self.layers[rows, :width], self.patched[rows])


@torch.no_grad()
def _forward(model: TransformerBridge, tokens: Tensor, names: Sequence[str]) -> tuple[Tensor, dict[str, Tensor]]:
    # Full-sequence logits (the KL covers every real token), and the activations at `names`, all detached.
    logits, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=list(names))
    return logits, {name: cache[name] for name in names}


def precompute_targets(
    teacher: TransformerBridge, dataset: ContrastiveDataset, pairings: Sequence, *, all_tokens: bool = False,
    interchange: bool = False, batch_size: int = 64,
) -> TeacherTargets:
    """The teacher's targets for every example of `dataset` (teacher in eval mode, no gradients); logits at every
    token with `all_tokens`, else at the answer position only (a tenth of the memory on IOI). With `interchange`
    (IIT), also the answer logits with each pairing's teacher point on the clean prompt replaced by its value on
    the corrupt prompt: n · pairings · d_vocab floats, one batched forward per chunk."""
    teacher.eval()
    names = namer(teacher)
    at_pos = [p for p in pairings if p.position is not None]
    every = [p for p in pairings if p.position is None]
    hook = {p: names.name(Site(p.site), p.teacher_layer) for p in pairings}
    width = max(len(e.clean_ids) for e in dataset.examples)

    def chunk_targets(start: int) -> dict[str, Tensor]:
        batch = dataset.batch(list(range(start, min(start + batch_size, len(dataset)))))
        pad = width - batch.clean.shape[1]
        logits, clean = _forward(teacher, batch.clean, sorted(set(hook.values())))
        part = {}
        if all_tokens:
            part["logits"] = torch.nn.functional.pad(logits.float().cpu(), (0, 0, 0, pad))
        else:
            part["logits"] = at_positions(logits, batch.answer_pos)[:, None].float().cpu()
        states = [p.teacher_part(at_positions(clean[hook[p]], batch.position(p.position))) for p in at_pos]
        if at_pos:
            _, corrupt = _forward(teacher, batch.corrupt, sorted({hook[p] for p in at_pos}))
            lows = [p.teacher_part(at_positions(corrupt[hook[p]], batch.position(p.position))) for p in at_pos]
            part["imprints"] = torch.stack([h - k for h, k in zip(states, lows)], 1).cpu()
            part["states"] = torch.stack(states, 1).cpu()
            if interchange:  # the teacher's own corrupt value into its clean run, one pairing per row block
                swaps = [Interchange(Site(p.site), p.teacher_layer, batch.position(p.position), low, p.teacher_head)
                         for p, low in zip(at_pos, lows)]
                with torch.no_grad():
                    patched = interchange_logits(teacher, batch.clean, batch.answer_pos, swaps)
                part["patched"] = patched.float().cpu()
        if every:
            full = torch.stack([clean[hook[p]] for p in every], 2)  # (batch, pos, pairing, d_t)
            part["layers"] = torch.nn.functional.pad(full.cpu(), (0, 0, 0, 0, 0, pad))
        return part

    # under torchrun each process computes its share of the chunks and every process gets all of them
    chunks = map_shards(range(0, len(dataset), batch_size), chunk_targets, "teacher targets")
    parts = {key: [c[key] for c in chunks if key in c]
             for key in ("logits", "states", "imprints", "layers", "patched")}
    n = len(dataset)
    d = teacher.cfg.d_head if any(p.teacher_head is not None for p in at_pos) else teacher.cfg.d_model
    cat = lambda key, empty: torch.cat(parts[key]) if parts[key] else empty  # noqa: E731
    return TeacherTargets(
        logits=torch.cat(parts["logits"]),
        states=cat("states", torch.zeros(n, 0, d)),
        imprints=cat("imprints", torch.zeros(n, 0, d)),
        layers=cat("layers", torch.zeros(n, width, 0, d)),
        patched=cat("patched", torch.zeros(n, 0, teacher.cfg.d_vocab)),
    )


@torch.no_grad()
def fit_maps(
    teacher: TransformerBridge, student: TransformerBridge, dataset: ContrastiveDataset, pairings: Sequence,
    *, n_fit: int = 256, batch_size: int = 64,
) -> dict[str, ProcrustesMap]:
    """A frozen W* per (site, teacher layer) of `pairings`: Procrustes from the student's mapped layer to the
    teacher's layer over every real token of the first `n_fit` clean examples (seed §5.3), fitted on the student
    as it is when distillation starts."""
    t_names, s_names = namer(teacher), namer(student)
    wanted = {p.key: (t_names.name(Site(p.site), p.teacher_layer), s_names.name(Site(p.site), p.student_layer))
              for p in pairings}
    pairing_of = {p.key: p for p in pairings}
    rows = list(range(min(n_fit, len(dataset))))
    xs: dict[str, list[Tensor]] = {k: [] for k in wanted}
    ys: dict[str, list[Tensor]] = {k: [] for k in wanted}

    def chunk_acts(start: int) -> dict[str, tuple[Tensor, Tensor]]:
        batch = dataset.batch(rows[start : start + batch_size])
        real = torch.arange(batch.clean.shape[1])[None, :] <= batch.answer_pos[:, None]  # (batch, pos)
        _, t_acts = _forward(teacher, batch.clean, sorted({t for t, _ in wanted.values()}))
        _, s_acts = _forward(student, batch.clean, sorted({s for _, s in wanted.values()}))
        return {key: (pairing_of[key].student_part(s_acts[s_name][real.to(s_acts[s_name].device)]).float().cpu(),
                      pairing_of[key].teacher_part(t_acts[t_name][real.to(t_acts[t_name].device)]).float().cpu())
                for key, (t_name, s_name) in wanted.items()}

    for acts in map_shards(range(0, len(rows), batch_size), chunk_acts, "fitting W*"):
        for key, (x, y) in acts.items():
            xs[key].append(x)
            ys[key].append(y)
    device = student.cfg.device
    return {k: ProcrustesMap.fit(torch.cat(xs[k]), torch.cat(ys[k])).to(device) for k in wanted}
