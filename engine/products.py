"""The matrix products a layer computes, as text with live shapes (the seed's view).

Layer modules hold only setup/reshape/forward/backward; this module describes
them for the step-through and the GUI.
"""
from __future__ import annotations

from typing import Callable

_DESCRIBERS: dict[str, Callable] = {}


def describer(type_name: str):
    """Register a function (layer) -> (dims, forward_products, backward_products)."""
    def decorate(fn):
        _DESCRIBERS[type_name] = fn
        return fn
    return decorate


def describe(layer) -> tuple[dict[str, int], list[str], list[str]]:
    fn = _DESCRIBERS.get(layer.type_name)
    return fn(layer) if fn else ({}, [], [])


@describer("InnerProduct")
def _inner_product(layer):
    M, N, K = layer.M, layer.N, layer.K
    dims = {"M_": M, "N_": N, "K_": K}
    w = f"W [{K}×{N}]" if layer.transpose else f"W [{N}×{K}]"
    forward = [f"top [{M}×{N}] = a [{M}×{K}] · {'W' if layer.transpose else 'Wᵀ'} [{K}×{N}]"
               + (f" + 1 [{M}] · bᵀ [{N}]" if layer.bias_term else "")]
    backward = [f"dW [{N}×{K}] += δᵀ [{N}×{M}] · a [{M}×{K}]" if not layer.transpose
                else f"dW [{K}×{N}] += aᵀ [{K}×{M}] · δ [{M}×{N}]"]
    if layer.bias_term:
        backward.append(f"db [{N}] += δᵀ [{N}×{M}] · 1 [{M}]")
    backward.append(f"δ_down [{M}×{K}] = δ [{M}×{N}] · {w}")
    return dims, forward, backward


@describer("Convolution")
def _convolution(layer):
    """Caffe's per-image GEMMs after im2col: M_ = Co/group, K_ = C/group·kh·kw, N_ = Ho·Wo."""
    n, c, g = layer.num, layer.channels, layer.group
    (kh, kw), (ho, wo) = layer.kernel, layer.output_shape
    M, K, P = layer.num_output // g, layer.kernel_dim, layer.out_spatial_dim
    dims = {"N": n, "C": c, "group": g, "kh": kh, "kw": kw, "Ho": ho, "Wo": wo,
            "M_": M, "N_": P, "K_": K}
    per = f"per image (×{n})" + (f", per group (×{g})" if g > 1 else "")
    summed = f"summed over the {n} images" + (f", per group (×{g})" if g > 1 else "")
    rows = c * kh * kw
    forward = [f"im2col: a [{c}×{layer.input_shape[0]}×{layer.input_shape[1]}] → col [{rows}×{P}] {per}",
               f"top [{M}×{P}] = W [{M}×{K}] · col [{K}×{P}]"
               + (f" + b [{M}] · 1ᵀ [{P}]" if layer.bias_term else "") + f" {per}"]
    backward = [f"dW [{M}×{K}] += δ [{M}×{P}] · colᵀ [{P}×{K}] {summed}"]
    if layer.bias_term:
        backward.append(f"db [{layer.num_output}] += δ [{layer.num_output}×{P}] · 1 [{P}] summed over the {n} images")
    backward.append(f"δ_col [{K}×{P}] = Wᵀ [{K}×{M}] · δ [{M}×{P}] {per}; "
                    f"col2im → δ_down [{c}×{layer.input_shape[0]}×{layer.input_shape[1]}]")
    return dims, forward, backward
