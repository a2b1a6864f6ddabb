"""The one backend seam: numpy on the CPU, cupy on the GPU (imported lazily).

Layer code never imports numpy for math that must run on both; it asks the
array it works on for its module with :func:`get_array_module` (the ``xp``
idiom of Chainer and CuPy).
"""
from __future__ import annotations

import numpy

from .errors import DeviceError

_cupy = None
_mode = "cpu"


def _is_cupy_array(array) -> bool:
    return type(array).__module__.startswith("cupy")


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a cupy array, else ``numpy``."""
    for array in arrays:
        if _is_cupy_array(array):
            return _cupy
    return numpy


def gpu_status() -> tuple[bool, str]:
    """Whether the GPU can be used, and if not, why (a sentence for a tooltip)."""
    try:
        import cupy  # noqa: F401  (lazy: only when a GPU is asked for)
    except Exception as exc:  # ImportError, or a broken CUDA install
        return False, f"cupy is not installed or failed to import ({exc.__class__.__name__}: {exc})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"cupy is installed but no CUDA device is usable ({exc})"
    if count < 1:
        return False, "cupy is installed but no CUDA device was found"
    return True, f"{count} CUDA device(s)"


def cupy_module():
    """Import and return cupy, or raise :class:`DeviceError` saying what is missing."""
    global _cupy
    if _cupy is None:
        ok, why = gpu_status()
        if not ok:
            raise DeviceError(f"GPU requested but unavailable: {why}")
        import cupy
        _cupy = cupy
    return _cupy


def normalize_device(device: str) -> str:
    """'cpu' or 'gpu' (accepts 'cuda' and 'GPU' too)."""
    name = str(device).lower()
    if name in ("cpu",):
        return "cpu"
    if name in ("gpu", "cuda"):
        return "gpu"
    raise ValueError(f"unknown device '{device}': use 'cpu' or 'gpu'")


def array_module_for(device: str):
    """numpy for 'cpu', cupy for 'gpu'."""
    return cupy_module() if normalize_device(device) == "gpu" else numpy


def to_device(array, device: str):
    """Copy ``array`` to ``device`` ('cpu' or 'gpu') without changing a value."""
    if normalize_device(device) == "gpu":
        return cupy_module().asarray(array)
    return to_numpy(array)


def to_numpy(array):
    """A numpy view or copy of ``array`` wherever it lives."""
    if _is_cupy_array(array):
        return array.get()
    return numpy.asarray(array)


def device_of(array) -> str:
    return "gpu" if _is_cupy_array(array) else "cpu"


def set_mode_cpu() -> None:
    """New nets and solvers are built on the CPU (pycaffe's ``caffe.set_mode_cpu``)."""
    global _mode
    _mode = "cpu"


def set_mode_gpu() -> None:
    """New nets and solvers are built on the GPU; raises DeviceError if there is none."""
    global _mode
    cupy_module()
    _mode = "gpu"


def current_mode() -> str:
    return _mode
