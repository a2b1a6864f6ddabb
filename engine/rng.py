"""The engine's random streams (Caffe's ``Caffe::rng``), reseeded together by ``set_seed``.

* :func:`caffe_stream`: Caffe's own stream (boost mt19937 seeded with ``random_seed``,
  :mod:`engine.caffe_rng`): the random fillers, TRAIN Dropout masks and the values
  data layers take at setup, so these follow Caffe's CPU run bit for bit.
* :func:`c_rand`: glibc's ``rand()`` (:class:`engine.caffe_rng.GlibcRand`), which
  Caffe never seeds and HDF5Data's ``std::random_shuffle`` reads. It is global to
  a Caffe process (one ``caffe train``, one solver), so :func:`reset_c_rand`
  brings it back to seed 1 when a Solver is built; ``set_seed`` leaves it alone.
* :func:`generator`: a numpy Generator for the engine's other random draws
  (BuiltinData's shuffle, stochastic pooling, the Data layer's ``rand_skip``),
  which are repeatable but not Caffe's.

The data transformers and ImageData's shuffle own streams of their own, seeded
from :func:`caffe_stream` as Caffe seeds them (their positions travel with the
layers' saved positions). Random numbers are drawn on the CPU and copied to the
device, so CPU and GPU runs with the same ``random_seed`` see the same values.
:func:`get_state` / :func:`set_state` save and restore the three streams (rewind,
resume, hand-over).
"""
from __future__ import annotations

import numpy

from .caffe_rng import CaffeStream, GlibcRand, checked_glibc_state, checked_state

#: The key under which :func:`get_state` keeps the Caffe stream's position.
CAFFE_STATE_KEY = "caffe_stream"
#: The key under which :func:`get_state` keeps glibc ``rand()``'s position.
GLIBC_STATE_KEY = "glibc_rand"
_OWN_KEYS = (CAFFE_STATE_KEY, GLIBC_STATE_KEY)

_generator = numpy.random.default_rng()
_caffe: CaffeStream | None = None
_c_rand = GlibcRand()


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


def c_rand() -> GlibcRand:
    """glibc's ``rand()`` of this process (HDF5Data's shuffles)."""
    return _c_rand


def reset_c_rand() -> None:
    """Back to an unseeded glibc ``rand()`` (seed 1), as a fresh Caffe process starts."""
    _c_rand.seed(1)


def get_state() -> dict:
    """The streams' positions: numpy's state dict plus ``CAFFE_STATE_KEY`` and
    ``GLIBC_STATE_KEY`` (fresh, JSON-ready)."""
    state = dict(_generator.bit_generator.state)
    state[CAFFE_STATE_KEY] = caffe_stream().state()
    state[GLIBC_STATE_KEY] = _c_rand.state()
    return state


def set_state(state: dict) -> None:
    """Restore what :func:`get_state` gave (all checked before any is applied); a state
    without the Caffe stream's or glibc's position (written before they were saved)
    leaves that stream where it is."""
    caffe_state = checked_state(state[CAFFE_STATE_KEY]) if CAFFE_STATE_KEY in state else None
    glibc_state = checked_glibc_state(state[GLIBC_STATE_KEY]) if GLIBC_STATE_KEY in state else None
    _generator.bit_generator.state = {key: value for key, value in state.items() if key not in _OWN_KEYS}
    if caffe_state is not None:
        caffe_stream().set_state(caffe_state)
    if glibc_state is not None:
        _c_rand.set_state(glibc_state)
