"""Teacher↔student alignment: layer maps, Procrustes rotations, linear CKA."""

from rcid_tl.alignment.cka import debiased_linear_cka, linear_cka
from rcid_tl.alignment.layers import cka_argmax_layer_map, layer_activations, proportional_layer_map
from rcid_tl.alignment.procrustes import ProcrustesMap, fit_procrustes

__all__ = [
    "ProcrustesMap", "cka_argmax_layer_map", "debiased_linear_cka", "fit_procrustes", "layer_activations", "linear_cka",
    "proportional_layer_map",
]
