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
