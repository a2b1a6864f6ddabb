"""BVLC pycaffe's API over the engine: ``import engine.pycaffe as caffe`` and run
pycaffe code unchanged.

    import engine.pycaffe as caffe
    net = caffe.Net('deploy.prototxt', caffe.TEST, weights='model.caffemodel')
    out = net.forward(data=batch)            # {output name: array}
    solver = caffe.get_solver('solver.prototxt')
    solver.step(100)

``Net``, ``Blob`` (``data``/``diff`` are the engine's own numpy arrays on the
CPU, numpy mirrors kept in step with the device after ``set_mode_gpu()``), the six solvers, ``caffe.io``,
``caffe.proto.caffe_pb2``, ``caffe.net_spec`` (``NetSpec``, ``layers``,
``params``, ``to_proto``), ``Classifier`` and ``Detector``.
``python -m engine.pycaffe --install-alias`` makes ``import caffe`` load this
module (only on request).
Python layers (``type: 'Python'``, subclasses of ``caffe.Layer``) run on the CPU; the nets
pycaffe builds import their modules from ``sys.path``, as BVLC's (engine.pycaffe.python_layer).
"""
from __future__ import annotations

import logging
import time

from .. import backend, rng
from ..errors import DeviceError, NetDefinitionError
from ..layer import supported_types
from ..net import TEST, TRAIN
from . import coord_map, io, net_spec, proto  # noqa: F401
from ._alias import register_caffe_alias
from ._blob import FOLLOWERS, Blob, Layer
from ._net import Net
from ._solver import (
    AdaDeltaSolver,
    AdaGradSolver,
    AdamSolver,
    NesterovSolver,
    RMSPropSolver,
    SGDSolver,
    Solver,
    get_solver,
)
from .classifier import Classifier
from .detector import Detector
from .net_spec import NetSpec, layers, params, to_proto

__version__ = "1.0.0"

_logger = logging.getLogger("caffe")
_device_id = 0


def set_mode_cpu() -> None:
    """Run on the CPU (numpy): nets and solvers made from now on, and (Caffe's mode
    being global) those pycaffe made before."""
    backend.set_mode_cpu()
    FOLLOWERS.move_all("cpu")


def set_mode_gpu() -> None:
    """Run on the GPU (cupy): new nets and solvers and those made before; a
    DeviceError says why when cupy or a CUDA device is missing."""
    try:
        backend.set_mode_gpu()
    except DeviceError as exc:
        raise DeviceError(f"caffe.set_mode_gpu(): {exc}; nets keep running on the CPU "
                          f"(caffe.set_mode_cpu())") from None
    _use_device()
    FOLLOWERS.move_all("gpu")


def set_device(device_id: int) -> None:
    """The CUDA device GPU nets use (applied now when the GPU is usable, else at set_mode_gpu)."""
    global _device_id
    _device_id = int(device_id)
    if backend.current_mode() == "gpu":
        _use_device()


def _use_device() -> None:
    cupy = backend.cupy_module()
    if not hasattr(cupy, "cuda"):  # the tests' strict device stand-in
        return
    count = cupy.cuda.runtime.getDeviceCount()
    if not 0 <= _device_id < count:
        raise DeviceError(f"set_device({_device_id}): there are {count} CUDA device(s)")
    cupy.cuda.Device(_device_id).use()


def set_random_seed(seed: int) -> None:
    """Seed the engine's random stream (fillers, Dropout, shuffling)."""
    rng.set_seed(int(seed))


def layer_type_list() -> list[str]:
    """The layer types the engine can build."""
    return supported_types()


def init_log(level: int = 0) -> None:
    """pycaffe's init_log: log messages of glog ``level`` (0 INFO ... 3 FATAL) and up."""
    levels = [logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
    logging.basicConfig()
    _logger.setLevel(levels[min(max(int(level), 0), 3)])


def log(message: str) -> None:
    _logger.info(message)


def has_nccl() -> bool:
    return False


def solver_count() -> int:
    return 1


def solver_rank() -> int:
    return 0


def set_solver_count(count: int) -> None:
    if count != 1:
        raise NetDefinitionError("engine.pycaffe trains with one solver (no multi-GPU/NCCL)")


def set_solver_rank(rank: int) -> None:
    if rank != 0:
        raise NetDefinitionError("engine.pycaffe trains with one solver (no multi-GPU/NCCL)")


def set_multiprocess(multiprocess: bool) -> None:
    """Accepted for compatibility; the engine has one solver process."""


class NCCL:
    """Multi-GPU training is not part of the engine."""

    def __init__(self, *args, **kwargs):
        raise NetDefinitionError("caffe.NCCL: engine.pycaffe has no multi-GPU (NCCL) training")


class Timer:
    """pycaffe's Timer: ``start()``, ``stop()``, ``ms`` (milliseconds between them)."""

    def __init__(self) -> None:
        self._start = self._stop = 0.0

    def start(self) -> None:
        self._start = self._stop = time.perf_counter()

    def stop(self) -> None:
        self._stop = time.perf_counter()

    @property
    def ms(self) -> float:
        return (self._stop - self._start) * 1000.0


__all__ = [
    "Net", "Blob", "Layer", "Solver", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
    "AdaDeltaSolver", "AdamSolver", "get_solver", "set_mode_cpu", "set_mode_gpu", "set_device",
    "set_random_seed", "layer_type_list", "init_log", "log", "has_nccl", "solver_count", "solver_rank",
    "set_solver_count", "set_solver_rank", "set_multiprocess", "NCCL", "Timer", "TRAIN", "TEST",
    "Classifier", "Detector", "register_caffe_alias", "coord_map", "io", "net_spec", "proto", "NetSpec", "layers",
    "params", "to_proto", "__version__",
]
