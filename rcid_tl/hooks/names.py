"""The only module that spells TransformerLens hook names; everything else asks it by (site, layer).

TransformerLens 4 keeps the HookedTransformer vocabulary as aliases on `TransformerBridge`; if those aliases
go away, this is the one place to change.
"""

import functools
from dataclasses import dataclass, field
from enum import Enum

from rcid_tl.errors import InputError, parse_choice


class Site(str, Enum):
    """A named activation site, in TransformerLens's vocabulary."""

    RESID_PRE = "resid_pre"  # (batch, pos, d_model): input of block l
    RESID_MID = "resid_mid"  # (batch, pos, d_model): after attention, before the MLP
    RESID_POST = "resid_post"  # (batch, pos, d_model): output of block l (the RCID imprint's patch point)
    Z = "z"  # (batch, pos, head, d_head): per-head attention output before W_O
    RESULT = "result"  # (batch, pos, head, d_model): per-head output through W_O
    PATTERN = "pattern"  # (batch, head, query_pos, key_pos)
    Q = "q"  # (batch, pos, head, d_head): queries before any rotary embedding
    K = "k"  # (batch, pos, kv_head, d_head): grouped heads on GQA models
    V = "v"  # (batch, pos, kv_head, d_head)
    ATTN_OUT = "attn_out"  # (batch, pos, d_model)
    MLP_OUT = "mlp_out"  # (batch, pos, d_model)

    @property
    def per_head(self) -> bool:
        return self in (Site.Z, Site.RESULT, Site.PATTERN, Site.Q, Site.K, Site.V)

    @property
    def patch_in_place(self) -> bool:
        """Whether a patch must edit the hooked tensor in place. The bridge's `hook_resid_mid` is the input hook of
        the second LayerNorm, whose input tensor is also the residual stream the MLP output is added to; returning
        an edited copy would change only the MLP's input, so the residual itself has to be edited."""
        return self is Site.RESID_MID


_TEMPLATES: dict[Site, str] = {
    Site.RESID_PRE: "blocks.{layer}.hook_resid_pre",
    Site.RESID_MID: "blocks.{layer}.hook_resid_mid",
    Site.RESID_POST: "blocks.{layer}.hook_resid_post",
    Site.Z: "blocks.{layer}.attn.hook_z",
    Site.RESULT: "blocks.{layer}.attn.hook_result",
    Site.PATTERN: "blocks.{layer}.attn.hook_pattern",
    Site.Q: "blocks.{layer}.attn.hook_q",
    Site.K: "blocks.{layer}.attn.hook_k",
    Site.V: "blocks.{layer}.attn.hook_v",
    Site.ATTN_OUT: "blocks.{layer}.hook_attn_out",
    Site.MLP_OUT: "blocks.{layer}.hook_mlp_out",
}


def parse_site(value: str) -> Site:
    """The `Site` named `value`, or an InputError listing the allowed names."""
    return parse_choice(Site, value, "site")


FINAL_NORM_SCALE = "ln_final.hook_scale"  # (batch, pos, 1): the final norm's divisor, for direct logit attribution


@functools.cache  # sweeps name every site: thousands of calls
def hook_name(site: Site | str, layer: int) -> str:
    """The hook-point name of `site` at block `layer` (no range check; see `HookNamer`)."""
    return _TEMPLATES[Site(site)].format(layer=layer)


@dataclass(frozen=True)
class Head:
    """One attention head, written "L.H" as in Wang et al. 2023."""

    layer: int
    head: int

    def __str__(self) -> str:
        return f"{self.layer}.{self.head}"

    @classmethod
    def parse(cls, text: str) -> "Head":
        parts = text.strip().split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise InputError(f"bad head {text!r}; write heads as LAYER.HEAD, e.g. 9.9")
        return cls(int(parts[0]), int(parts[1]))


@dataclass(frozen=True)
class HookNamer:
    """Hook names for one model's shape, with layer and head ranges checked."""

    n_layers: int
    n_heads: int
    absent: frozenset[Site] = frozenset()  # sites this model's blocks lack (resid_mid on parallel blocks)
    architecture: str = field(default="this model", compare=False)  # named in messages only

    def check_layer(self, layer: int) -> int:
        if not 0 <= layer < self.n_layers:
            raise InputError(f"layer {layer} is out of range; this model has layers 0..{self.n_layers - 1}")
        return layer

    def check_head(self, head: Head) -> Head:
        self.check_layer(head.layer)
        if not 0 <= head.head < self.n_heads:
            raise InputError(f"head {head} is out of range; this model has heads 0..{self.n_heads - 1} per layer")
        return head

    def name(self, site: Site | str, layer: int) -> str:
        site = Site(site)
        if site in self.absent:
            allowed = ", ".join(s.value for s in Site if s not in self.absent)
            raise InputError(f"site {site.value!r} does not exist on {self.architecture}: its blocks add attention "
                             f"and MLP to the residual in parallel, so nothing lies between them; allowed: {allowed}")
        return hook_name(site, self.check_layer(layer))

    def all_heads(self) -> list[Head]:
        return [Head(layer, h) for layer in range(self.n_layers) for h in range(self.n_heads)]


class CausalSite(str, Enum):
    """A hook point on CausalQwen's causal head, present on a bridge over a CausalQwen model."""

    LOC_U = "loc_U"  # (batch, pos, causal_size): abduction, location of the individual U
    SCALE_U = "scale_U"  # (batch, pos, causal_size): abduction, scale of U (> 0)
    LOC_S = "loc_S"  # (batch, pos, d_vocab): action, location of the decision scores S (compatible-mode logits)
    SCALE_S = "scale_S"  # (batch, pos, d_vocab): action, scale of S, |W|·(scale_U + |b_noise|)
    OVR_PROBS = "ovr_probs"  # (batch, pos, d_vocab): one-vs-rest P(S_k > threshold_k)


_CAUSAL_TEMPLATES: dict[CausalSite, str] = {
    CausalSite.LOC_U: "abduction.hook_loc_U",
    CausalSite.SCALE_U: "abduction.hook_scale_U",
    CausalSite.LOC_S: "action.hook_loc_S",
    CausalSite.SCALE_S: "action.hook_scale_S",
    CausalSite.OVR_PROBS: "ovr.hook_probs",
}


def causal_hook_name(site: CausalSite | str) -> str:
    """The hook-point name of a causal-head site, e.g. `abduction.hook_loc_U` (one per model, no layer)."""
    return _CAUSAL_TEMPLATES[parse_choice(CausalSite, site, "causal-head site")]


def causal_hook_names() -> tuple[str, ...]:
    return tuple(_CAUSAL_TEMPLATES.values())
