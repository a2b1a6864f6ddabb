"""The one backend seam: numpy on the CPU, cupy on the GPU (imported lazily).

Layer code never imports numpy for math that must run on both; it asks the
array it works on for its module with :func:`get_array_module` (the ``xp``
idiom of Chainer and CuPy).
"""
from __future__ import annotations

import importlib.util

import numpy

from .errors import DeviceError

_cupy = None
_mode = "cpu"
_device_array_modules: tuple[str, ...] = ("cupy",)  # modules whose array types are device arrays
_override = None  # a stand-in installed by use_device_module (tests only)


def _is_cupy_array(array) -> bool:
    return type(array).__module__.startswith(_device_array_modules)


def use_device_module(module):
    """Tests only: make ``module`` the GPU's array module in place of cupy (the strict
    stand-in, ``engine.strict_device.xp``; see its ``installed()``), or with None go back
    to cupy. Returns the stand-in that was installed before (None for cupy). The app never
    calls this."""
    global _cupy, _override, _device_array_modules
    previous = _override
    _override = module
    if module is None:
        _cupy, _device_array_modules = None, ("cupy",)
    else:
        _cupy, _device_array_modules = module, ("cupy", module.ndarray.__module__)
    return previous


def get_array_module(*arrays):
    """Return ``cupy`` (or the installed stand-in) if any argument is a device array, else ``numpy``."""
    for array in arrays:
        if _is_cupy_array(array):
            return _cupy
    return numpy


def gpu_status() -> tuple[bool, str]:
    """Whether the GPU can be used, and if not, why (one line for a tooltip or the
    command line, naming the pip extra to install when cupy is missing or does not
    fit the driver)."""
    if _override is not None:
        return True, "the strict device stand-in (tests only)"
    if importlib.util.find_spec("cupy") is None:
        return False, _one_line("cupy is not installed", _install_hint())
    try:
        import cupy  # noqa: F401  (lazy: only when a GPU is asked for)
    except Exception as exc:  # a broken CUDA install, a wheel for another CUDA
        return False, _one_line(f"cupy failed to import ({exc.__class__.__name__}: {exc})", _install_hint())
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, _one_line(f"cupy is installed but no CUDA device is usable ({exc})", _install_hint())
    if count < 1:
        return False, "cupy is installed but no CUDA device was found"
    return True, f"{count} CUDA device(s)"


# -- which cupy wheel fits the driver (found without importing cupy) ----------
#: pip extras of this project: CUDA major version -> extra (pyproject.toml)
CUPY_EXTRAS = {12: "gpu12", 13: "gpu13"}
_CUPY_WHEELS = ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy")


def cuda_driver_version() -> int | None:
    """The CUDA version the installed NVIDIA driver supports (1000*major + 10*minor,
    e.g. 12040 for 12.4): libcuda's ``cuDriverGetVersion`` through ctypes, else the
    ``CUDA Version`` nvidia-smi prints; None when there is no driver."""
    import ctypes
    import ctypes.util
    for name in (ctypes.util.find_library("cuda"), "libcuda.so.1", "nvcuda.dll"):
        if not name:
            continue
        try:
            version = ctypes.c_int(0)
            if ctypes.CDLL(name).cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value > 0:
                return version.value
        except (OSError, AttributeError):
            continue
    try:
        import subprocess
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> int | None:
    """The driver's CUDA version from nvidia-smi's header ("CUDA Version: 12.4"), as
    :func:`cuda_driver_version` gives it; None when the text has none."""
    import re
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", text)
    return None if match is None else 1000 * int(match.group(1)) + 10 * int(match.group(2))


def installed_cupy_wheels() -> list[tuple[str, int | None]]:
    """(distribution, CUDA major it was built for; None for a source build) of every cupy
    package installed, read from the package metadata (cupy is not imported)."""
    from importlib import metadata
    found = []
    for name in _CUPY_WHEELS:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        major = name.removeprefix("cupy-cuda").removesuffix("x")
        found.append((name, int(major) if major.isdigit() else None))
    return found


def _cuda_text(version: int) -> str:
    return f"CUDA {version // 1000}.{version % 1000 // 10}"


def cupy_install_hint(driver: int | None, wheels: list[tuple[str, int | None]]) -> str | None:
    """One line saying which extra to install for a driver supporting CUDA ``driver``
    (as :func:`cuda_driver_version` gives it, None: no driver) when the cupy ``wheels``
    installed (:func:`installed_cupy_wheels`) are missing, several or do not fit; None
    when they fit."""
    extras = " or ".join(f"'.[{extra}]' (CUDA {major})" for major, extra in CUPY_EXTRAS.items())
    if driver is None:
        return f"no NVIDIA driver was found (libcuda, nvidia-smi): install one, then pip install -e {extras}"
    major = driver // 1000
    lowest, highest = min(CUPY_EXTRAS), max(CUPY_EXTRAS)
    if major < lowest:
        return (f"the NVIDIA driver supports {_cuda_text(driver)}; cupy here needs CUDA {lowest} or newer: "
                f"update the driver, then pip install -e '.[{CUPY_EXTRAS[lowest]}]'")
    extra = CUPY_EXTRAS[min(major, highest)]
    if not wheels:
        return f"install the GPU extra for the driver's {_cuda_text(driver)}: pip install -e '.[{extra}]'"
    if len(wheels) > 1:
        names = " ".join(name for name, _ in wheels)
        return f"several cupy packages are installed ({names}): pip uninstall -y {names} && pip install -e '.[{extra}]'"
    name, built_for = wheels[0]
    if built_for is not None and built_for > major:
        return (f"{name} needs a CUDA {built_for} driver but this one supports {_cuda_text(driver)}: "
                f"pip uninstall -y {name} && pip install -e '.[{extra}]'")
    return None


def _install_hint() -> str | None:
    return cupy_install_hint(cuda_driver_version(), installed_cupy_wheels())


def _one_line(why: str, hint: str | None) -> str:
    text = " ".join(why.split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{text}; {hint}" if hint else text


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
