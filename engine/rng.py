"""The engine's random streams (Caffe's ``Caffe::rng``), reseeded together by ``set_seed``.

* :func:`caffe_stream`: Caffe's own stream (boost mt19937 seeded with ``random_seed``,
  :mod:`engine.caffe_rng`): the random fillers, TRAIN Dropout masks and the values
  data layers take at setup, so these follow Caffe's CPU run bit for bit.
* :func:`generator`: a numpy Generator for the engine's other random draws
  (data shuffling, stochastic pooling, the transformers' crops), which are
  repeatable but not Caffe's.

Random numbers are drawn on the CPU and copied to the device, so CPU and GPU runs
with the same ``random_seed`` see the same values. :func:`get_state` /
:func:`set_state` save and restore both streams (rewind, resume, hand-over).
"""
from __future__ import annotations

import numpy

from .caffe_rng import CaffeStream, checked_state

#: The key under which :func:`get_state` keeps the Caffe stream's position.
CAFFE_STATE_KEY = "caffe_stream"

_generator = numpy.random.default_rng()
_caffe: CaffeStream | None = None


def set_seed(seed: int | None) -> None:
    """Reseed both streams; a negative seed (Caffe's -1) or None picks a fresh random one."""
    global _generator, _caffe
    if seed is None or seed < 0:
        _generator, _caffe = numpy.random.default_rng(), None
    else:
        _generator, _caffe = numpy.random.default_rng(int(seed)), CaffeStream(int(seed))


def generator() -> numpy.random.Generator:
    return _generator


def caffe_stream() -> CaffeStream:
    """Caffe's stream (seeded from fresh entropy when no seed was set, as Caffe's unseeded RNG)."""
    global _caffe
    if _caffe is None:
        _caffe = CaffeStream(int(numpy.random.SeedSequence().generate_state(1)[0]))
    return _caffe


def get_state() -> dict:
    """Both streams' positions: numpy's state dict plus ``CAFFE_STATE_KEY`` (fresh, JSON-ready)."""
    state = dict(_generator.bit_generator.state)
    state[CAFFE_STATE_KEY] = caffe_stream().state()
    return state


def set_state(state: dict) -> None:
    """Restore what :func:`get_state` gave; a state without the Caffe stream's position
    (written before it was saved) leaves that stream where it is."""
    caffe_state = checked_state(state[CAFFE_STATE_KEY]) if CAFFE_STATE_KEY in state else None
    _generator.bit_generator.state = {key: value for key, value in state.items() if key != CAFFE_STATE_KEY}
    if caffe_state is not None:
        caffe_stream().set_state(caffe_state)
