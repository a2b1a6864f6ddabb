"""The engine's random stream (Caffe's ``Caffe::rng``): fillers, Dropout, shuffling.

Random numbers are drawn on the CPU with numpy and copied to the device, so CPU
and GPU runs with the same ``random_seed`` see the same values.
"""
from __future__ import annotations

import numpy

_generator = numpy.random.default_rng()


def set_seed(seed: int) -> None:
    """Reseed the stream; a negative seed picks a fresh random one (Caffe's -1)."""
    global _generator
    _generator = numpy.random.default_rng(None if seed is None or seed < 0 else int(seed))


def generator() -> numpy.random.Generator:
    return _generator


def get_state() -> dict:
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    _generator.bit_generator.state = state
