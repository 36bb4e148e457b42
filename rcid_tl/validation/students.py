"""Known-answer students: copies of a teacher edited so that how they relate to it is known by construction (heads
relabelled, value spaces rotated or rescaled, graded weight noise, random weights, two heads merged into one)."""

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from rcid_tl.artifacts import atomic_dir
from rcid_tl.errors import InputError
from rcid_tl.portable import write_tokenizer

ARCHITECTURES = ("gpt2", "qwen2", "llama")  # llama lays its attention out as qwen2 does (q/k/v/o_proj)
Head = tuple[int, int]  # (layer, head)
Correspondence = dict[Head, tuple[Head, ...]]  # teacher head → the student heads that compute what it computed


@dataclass(frozen=True, eq=False)
class KnownStudent:
    """A student whose relation to its teacher is known by construction. `correspondence` maps teacher heads to the
    student heads doing their work (`()`: none does); a teacher head missing from it carries no claim, and `None`
    means no correspondence is defined at all (random weights). `expected` says in words what a sound instrument
    should report when comparing it with the teacher."""

    name: str
    description: str
    model: PreTrainedModel = field(repr=False)
    correspondence: Correspondence | None
    expected: str


@dataclass(frozen=True)
class AttnShape:
    n_layers: int
    n_heads: int
    n_kv: int  # key/value heads; fewer than n_heads under grouped-query attention
    d_head: int

    @property
    def group(self) -> int:
        """Query heads per KV head (query head h reads KV head h // group, as `repeat_kv` lays them out)."""
        return self.n_heads // self.n_kv


def attn_shape(config: PretrainedConfig) -> AttnShape:
    """Attention shape of a gpt2, qwen2 or llama config; any other architecture is an InputError."""
    kind = getattr(config, "model_type", None)
    if kind not in ARCHITECTURES:
        raise InputError(f"known-answer students support {', '.join(ARCHITECTURES)} models, not {kind!r}")
    n_heads = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    d_head = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    return AttnShape(config.num_hidden_layers, n_heads, n_kv, d_head)


def head_weights(model: PreTrainedModel, layer: int, kind: Literal["q", "k", "v", "o"], index: int
                 ) -> tuple[Tensor, Tensor | None]:
    """Views (writing into them edits `model`) of one query head's q/o or one KV head's k/v weights, oriented as
    `x @ W`: q/k/v weights are (d_model, d_head) with a (d_head,) bias; o is (d_head, d_model), no per-head bias.

    GPT-2's fused Conv1D c_attn holds columns [q | k | v], each split into heads of d_head contiguous columns, and
    c_proj's rows are the concatenated head outputs z; Qwen2's nn.Linear projections keep heads in q/k/v rows and
    o_proj columns."""
    shape = attn_shape(model.config)
    d = shape.d_head
    cols = slice(index * d, (index + 1) * d)
    if kind == "o":
        w = out_projection(model, layer)
        return (w[cols], None) if model.config.model_type == "gpt2" else (w[:, cols].T, None)
    if model.config.model_type == "gpt2":
        attn = model.transformer.h[layer].attn
        offset = "qkv".index(kind) * shape.n_heads * d
        fused = slice(offset + index * d, offset + (index + 1) * d)
        return attn.c_attn.weight[:, fused], attn.c_attn.bias[fused]
    attn = model.model.layers[layer].self_attn
    proj = {"q": attn.q_proj, "k": attn.k_proj, "v": attn.v_proj}[kind]
    return proj.weight[cols].T, None if proj.bias is None else proj.bias[cols]


def out_projection(model: PreTrainedModel, layer: int) -> nn.Parameter:
    """The attention output projection's weight of `layer` (GPT-2 c_proj: heads in rows; Qwen2 o_proj: columns)."""
    if model.config.model_type == "gpt2":
        return model.transformer.h[layer].attn.c_proj.weight
    return model.model.layers[layer].self_attn.o_proj.weight


def editable_copy(model: PreTrainedModel) -> PreTrainedModel:
    attn_shape(model.config)  # refuse other architectures before copying anything
    return copy.deepcopy(model).eval()  # deepcopy keeps tied embeddings tied (one shared Parameter)


def _assign(dst: PreTrainedModel, src: PreTrainedModel, layer: int, kind: str, to: int, source: int) -> None:
    (w, b), (w0, b0) = head_weights(dst, layer, kind, to), head_weights(src, layer, kind, source)
    w.copy_(w0)
    if b is not None:
        b.copy_(b0)


def identity_correspondence(config: PretrainedConfig) -> Correspondence:
    shape = attn_shape(config)
    return {(l, h): ((l, h),) for l in range(shape.n_layers) for h in range(shape.n_heads)}


def _kv_permutation(shape: AttnShape, layer: int, perm: Sequence[int]) -> list[int]:
    """The KV-head permutation a query-head permutation implies; InputError if it splits a KV group."""
    if not 0 <= layer < shape.n_layers or sorted(perm) != list(range(shape.n_heads)):
        raise InputError(f"layer {layer}: {list(perm)} is not a permutation of the {shape.n_heads} heads of one of "
                         f"the {shape.n_layers} layers")
    kv = [perm[g * shape.group] // shape.group for g in range(shape.n_kv)]
    if any(perm[s] // shape.group != kv[s // shape.group] for s in range(shape.n_heads)):
        raise InputError(f"layer {layer}: {list(perm)} splits a key/value group; under grouped-query attention the "
                         f"{shape.group} query heads of a group must move together")
    return kv


def permute_heads(model: PreTrainedModel, perms: Mapping[int, Sequence[int]]) -> PreTrainedModel:
    """A copy of `model` whose heads are relabelled: student head s of layer l is teacher head `perms[l][s]` (the
    gather convention `student = teacher[perm]`); layers not in `perms` keep their order. Exact: the residual stream
    sums the heads, so the logits are the teacher's. Ground truth: `permutation_correspondence`."""
    shape = attn_shape(model.config)
    kv_perms = {layer: _kv_permutation(shape, layer, perm) for layer, perm in perms.items()}
    student = editable_copy(model)
    with torch.no_grad():
        for layer, perm in perms.items():
            for s, t in enumerate(perm):
                _assign(student, model, layer, "q", s, t)
                _assign(student, model, layer, "o", s, t)
            for s, t in enumerate(kv_perms[layer]):
                _assign(student, model, layer, "k", s, t)
                _assign(student, model, layer, "v", s, t)
    return student


def permutation_correspondence(config: PretrainedConfig, perms: Mapping[int, Sequence[int]]) -> Correspondence:
    """Teacher (l, perms[l][s]) → student (l, s); heads of unpermuted layers map to themselves."""
    truth = identity_correspondence(config)
    truth.update({(layer, t): ((layer, s),) for layer, perm in perms.items() for s, t in enumerate(perm)})
    return truth


def random_head_permutation(config: PretrainedConfig, seed: int) -> dict[int, list[int]]:
    """A seeded permutation of every layer's heads for `permute_heads`: the KV groups are shuffled, then the query
    heads within each group (without grouping every head is its own group). A layer may keep its order by chance."""
    shape = attn_shape(config)
    gen = torch.Generator().manual_seed(seed)
    perms = {}
    for layer in range(shape.n_layers):
        groups = torch.randperm(shape.n_kv, generator=gen).tolist()
        within = [torch.randperm(shape.group, generator=gen).tolist() for _ in groups]
        perms[layer] = [g * shape.group + i for g, order in zip(groups, within) for i in order]
    return perms


def _random_orthogonal(n: int, gen: torch.Generator) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))  # sign fix: Haar-distributed, not biased by QR's convention


def _reparametrise_values(model: PreTrainedModel, seed: int, draw) -> PreTrainedModel:
    """W_V → W_V M (bias too) per KV head and W_O → M⁻¹ W_O for every query head reading it: z becomes z M, and
    z M M⁻¹ W_O is the teacher's head output, so the logits are unchanged. `draw(gen)` gives (M, M⁻¹), float64."""
    shape = attn_shape(model.config)
    student = editable_copy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in range(shape.n_layers):
            for g in range(shape.n_kv):
                m, m_inv = draw(gen)
                w, b = head_weights(student, layer, "v", g)
                w.copy_((w.double() @ m).to(w.dtype))
                if b is not None:
                    b.copy_((b.double() @ m).to(b.dtype))
                for h in range(g * shape.group, (g + 1) * shape.group):
                    o, _ = head_weights(student, layer, "o", h)
                    o.copy_((m_inv @ o.double()).to(o.dtype))
    return student


def rotate_value_heads(model: PreTrainedModel, seed: int) -> PreTrainedModel:
    """Exact reparametrisation: each KV head's value space turned by a seeded random orthogonal R (W_V → W_V R,
    W_O → Rᵀ W_O for every query head of the group). Per-head value activations differ; logits do not."""
    def draw(gen):
        r = _random_orthogonal(attn_shape(model.config).d_head, gen)
        return r, r.T

    return _reparametrise_values(model, seed, draw)


def rescale_value_heads(model: PreTrainedModel, seed: int) -> PreTrainedModel:
    """Exact reparametrisation: each KV head's values times c, its query heads' W_O rows times 1/c, c log-uniform
    in [0.25, 4] (seeded). Value norms change by up to 4×; logits do not."""
    d = attn_shape(model.config).d_head

    def draw(gen):
        c = math.exp((torch.rand((), generator=gen, dtype=torch.float64).item() * 2 - 1) * math.log(4))
        eye = torch.eye(d, dtype=torch.float64)
        return eye * c, eye / c

    return _reparametrise_values(model, seed, draw)


def _norm_parameters(model: nn.Module) -> set[int]:
    return {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) or type(m).__name__.endswith("RMSNorm")
            for p in m.parameters(recurse=False)}


def add_weight_noise(model: PreTrainedModel, sigma: float, seed: int, *, norms: bool = True) -> PreTrainedModel:
    """A copy with Gaussian noise N(0, (σ·std(W))²) added to every floating parameter tensor W, the reference
    measurement's "σ × each tensor's std" graded damage. Norm gains and biases are included by default, as in that
    measurement (`norms=False` spares them); a constant tensor (std 0) is left as it is. Tied embeddings stay one
    tensor with one draw of noise. σ = 0 is the teacher; larger σ moves further from it."""
    if not sigma >= 0 or not math.isfinite(sigma):
        raise InputError(f"noise sigma must be a finite number ≥ 0, got {sigma}")
    student = editable_copy(model)
    spared = set() if norms else _norm_parameters(student)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in student.parameters():  # shared (tied) parameters are yielded once
            if p.is_floating_point() and p.numel() > 1 and id(p) not in spared:
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
                p.add_((noise * sigma * p.float().std()).to(p.dtype))
    return student


def random_weights(model_or_config: PreTrainedModel | PretrainedConfig, seed: int) -> PreTrainedModel:
    """A fresh model of the same config with the architecture's own initialisation, seeded (the global RNG is left
    as it was). Shares nothing with the teacher: no head correspondence is defined."""
    config = model_or_config.config if isinstance(model_or_config, PreTrainedModel) else model_or_config
    attn_shape(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = AutoModelForCausalLM.from_config(copy.deepcopy(config), attn_implementation="eager")
    return fresh.eval()


def _value_rows(model: PreTrainedModel, layer: int, kv: int) -> Tensor:
    """The head's value map with its bias as an extra input row: [x, 1] @ A = v, A of shape (d_model + 1, d_head)."""
    w, b = head_weights(model, layer, "v", kv)
    return torch.cat([w, b[None]]) if b is not None else w


def merge_heads(model: PreTrainedModel, layer: int, keep: int, drop: int) -> PreTrainedModel:
    """Two teacher heads merged into one (many-to-one): head `keep` keeps its attention pattern, its OV circuit
    becomes the best rank-d_head approximation (truncated SVD) of OV_keep + OV_drop, the value bias included as an
    extra input row, and head `drop`'s output projection is zeroed. Under grouped-query attention `keep`'s values
    are shared with its group, so they stay and only its W_O is refitted (least squares; exact when both heads read
    one KV group). Approximate by design: `drop`'s contribution now follows `keep`'s attention pattern."""
    shape = attn_shape(model.config)
    if not 0 <= layer < shape.n_layers or keep == drop or not {keep, drop} <= set(range(shape.n_heads)):
        raise InputError(f"merge needs two different heads of one layer (layer < {shape.n_layers}, heads < "
                         f"{shape.n_heads}); got layer {layer}, heads {keep} and {drop}")
    student = editable_copy(model)
    kv_keep, kv_drop = keep // shape.group, drop // shape.group
    with torch.no_grad():
        ov = sum(_value_rows(model, layer, kv).double() @ head_weights(model, layer, "o", h)[0].double()
                 for h, kv in ((keep, kv_keep), (drop, kv_drop)))  # (d_model + 1, d_model)
        w_o, _ = head_weights(student, layer, "o", keep)
        if shape.group == 1:
            u, s, vt = torch.linalg.svd(ov, full_matrices=False)
            root = s[: shape.d_head].sqrt()
            values = u[:, : shape.d_head] * root
            w_v, b_v = head_weights(student, layer, "v", kv_keep)
            w_v.copy_(values[: w_v.shape[0]].to(w_v.dtype))
            if b_v is not None:
                b_v.copy_(values[-1].to(b_v.dtype))
            w_o.copy_((root[:, None] * vt[: shape.d_head]).to(w_o.dtype))
        else:
            values = _value_rows(model, layer, kv_keep).double()
            w_o.copy_(torch.linalg.lstsq(values, ov).solution.to(w_o.dtype))
        head_weights(student, layer, "o", drop)[0].zero_()
    return student


def merge_correspondence(config: PretrainedConfig, layer: int, keep: int, drop: int) -> Correspondence:
    """Teacher (layer, keep) and (layer, drop) → student (layer, keep); every other head maps to itself."""
    truth = identity_correspondence(config)
    truth[(layer, drop)] = ((layer, keep),)
    return truth


def save_student(student: KnownStudent, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path) -> Path:
    """Write the student as a standard HF directory (config, model.safetensors, tokenizer), atomically, that
    `load_model(str(out_dir))` boots. A model already wrapped as a hooked model is saved under its HF key names."""
    model = student.model
    # wrapping replaces submodules in place and renames their keys (rcid_tl.models.saving); strip that, and let a
    # fresh model of the config take the weights (alias views the wrapper adds are dropped as unexpected keys)
    state = {k.replace("._original_component", ""): v for k, v in model.state_dict().items()}
    fresh = AutoModelForCausalLM.from_config(copy.deepcopy(model.config), attn_implementation="eager")
    missing, _ = fresh.load_state_dict(state, strict=False)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    if [k for k in missing if not (tied and k.startswith("lm_head"))]:
        raise RuntimeError(f"cannot save {student.name}: no weights for {missing}")
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        fresh.save_pretrained(tmp)
        write_tokenizer(tokenizer, tmp)
    return out_dir
