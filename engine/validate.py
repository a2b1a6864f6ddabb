"""Checks made before anything is read, built, allocated or written.

- :func:`check_input_file`: a file the engine is about to read is a regular file
  of a sane size (not ``/dev/zero``, a FIFO or a folder; at most 2 GB, the
  protobuf limit Caffe has too).
- :func:`require_memory`: an allocation fits in the memory there is (the
  system's MemAvailable, the process's address-space limit, the GPU's free memory).
- :func:`check_solver_param`: the solver's values, as Caffe checks them (and
  warnings for what is legal but makes no sense).
- :func:`check_snapshot_prefix` and :func:`sweep_stale_temporaries`: where
  snapshots go, checked when training starts, as Caffe's CheckSnapshotWritePermissions.
"""
from __future__ import annotations

import math
import os
import re
import resource
import stat
import tempfile
import warnings

from .errors import DataError, EngineError, EngineWarning, ResourceError, SnapshotError, SolverParameterError

#: Largest file read whole: protobuf's (and so Caffe's) 2 GB message limit.
MAX_FILE_BYTES = 2**31 - 1
#: Allocations smaller than this are not checked against the free memory (reading it costs ~20 us).
CHECK_MEMORY_FROM = 32 * 2**20
#: Folders no snapshot may go into (kernel pseudo file systems).
PSEUDO_FOLDERS = ("/proc", "/sys", "/dev")


def format_bytes(count: float) -> str:
    """``1.5 GB``-style size (decimal units, as ``df -H``)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000.0
    return f"{count:.1f} PB"


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
def check_input_file(path: str, what: str, error: type[EngineError] = DataError,
                     limit: int = MAX_FILE_BYTES) -> int:
    """The size of ``path`` if it is a regular file of at most ``limit`` bytes;
    else ``error`` naming ``what`` and ``path``. Nothing is opened (a FIFO would block)."""
    if "\0" in path:
        raise error(f"cannot read {what} {path!r}: a path cannot contain a NUL character")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"cannot read {what} '{path}': it does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {what} '{path}': {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"cannot read {what} '{path}': it is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"cannot read {what} '{path}': it is not a regular file (a device, FIFO or socket)")
    if info.st_size > limit:
        raise ResourceError(f"cannot read {what} '{path}': it is {format_bytes(info.st_size)}, more than the "
                            f"{format_bytes(limit)} a file of this kind may have")
    return int(info.st_size)


# ---------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------
def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _address_space_left() -> int | None:
    """What RLIMIT_AS still allows this process to map (None: no limit)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ValueError, OSError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            used = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(0, soft - used)


def available_memory(device: str = "cpu") -> int | None:
    """Bytes that can still be allocated on ``device`` (None when unknown)."""
    if device == "gpu":
        try:
            from . import backend
            free, _ = backend.cupy_module().cuda.runtime.memGetInfo()
            return int(free)
        except Exception:  # no cupy or no device: the allocation itself will say
            return None
    limits = [v for v in (_meminfo_available(), _address_space_left()) if v is not None]
    return min(limits) if limits else None


def require_memory(nbytes: int, what: str, device: str = "cpu") -> None:
    """ResourceError naming ``what`` when ``nbytes`` exceed the memory available."""
    if nbytes < CHECK_MEMORY_FROM:
        return
    available = available_memory(device)
    if available is not None and nbytes > available:
        where = "GPU memory" if device == "gpu" else "memory"
        raise ResourceError(f"{what} needs {format_bytes(nbytes)} but only {format_bytes(available)} of "
                            f"{where} is available")


def shape_bytes(shape, itemsize: int) -> int:
    """Bytes of an array of ``shape`` (Python ints: no overflow)."""
    count = 1
    for dim in shape:
        count *= int(dim)
    return count * int(itemsize)


# ---------------------------------------------------------------------------
# solver values
# ---------------------------------------------------------------------------
_MOMENTUM_BELOW_ONE = ("Adam", "AdaDelta")


def _refuse(where: str, text: str) -> SolverParameterError:
    return SolverParameterError(f"{where}: {text}")


def warn_about(where: str, text: str) -> None:
    warnings.warn(f"{where}: {text}", EngineWarning, stacklevel=3)


def check_solver_param(param, where: str, solver_type: str = "SGD", warn: bool = True) -> None:
    """Refuse the solver values Caffe refuses (or that cannot be computed), and (with
    ``warn``) warn on legal values that make no sense. ``where`` names the solver file."""
    finite_fields = ("base_lr", "momentum", "momentum2", "weight_decay", "gamma", "power", "delta",
                     "rms_decay", "clip_gradients")
    for name in finite_fields:
        value = getattr(param, name)
        if not math.isfinite(value):
            raise _refuse(where, f"{name} is {value}; it must be a finite number")
    for name in ("base_lr", "momentum", "momentum2", "weight_decay", "max_iter", "snapshot", "display",
                 "test_interval", "stepsize", "delta"):
        if getattr(param, name) < 0:
            raise _refuse(where, f"{name} is {getattr(param, name)}; it must be >= 0")
    for k, count in enumerate(param.test_iter):
        if count < 0:
            raise _refuse(where, f"test_iter #{k} is {count}; it must be >= 0")
    if param.iter_size < 1:
        raise _refuse(where, f"iter_size is {param.iter_size}; it must be >= 1")
    if param.average_loss < 1:
        raise _refuse(where, f"average_loss is {param.average_loss}; it must be >= 1 (as Caffe requires)")
    if param.momentum > 1:
        raise _refuse(where, f"momentum is {param.momentum:g}; it must be in [0, 1]")
    if solver_type in _MOMENTUM_BELOW_ONE and param.momentum >= 1:
        raise _refuse(where, f"momentum is {param.momentum:g}; {solver_type} needs it in [0, 1)")
    if solver_type == "Adam" and not 0 <= param.momentum2 < 1:
        raise _refuse(where, f"momentum2 is {param.momentum2:g}; Adam needs it in [0, 1)")
    if solver_type == "RMSProp" and not 0 <= param.rms_decay < 1:
        raise _refuse(where, f"rms_decay is {param.rms_decay:g}; RMSProp needs it in [0, 1)")
    if param.regularization_type not in ("L1", "L2"):
        raise _refuse(where, f"regularization_type is '{param.regularization_type}'; use L1 or L2")
    _check_lr_policy(param, where)
    if warn:
        warn_solver_param(param, where, solver_type)


def warn_solver_param(param, where: str, solver_type: str = "SGD") -> None:
    """EngineWarnings for legal solver values that make no sense (given after the net is
    built, so that a solver that cannot be built says only why)."""
    policy = param.lr_policy or "fixed"
    values = list(param.stepvalue) if policy == "multistep" else []
    for k in range(1, len(values)):
        if values[k] <= values[k - 1]:  # legal in Caffe: it takes one step per iteration at most
            warn_about(where, f"stepvalue does not increase (#{k - 1} is {values[k - 1]}, #{k} is {values[k]}): "
                              f"as in Caffe the rate drops at most once per iteration, so #{k} takes effect "
                              f"one iteration after #{k - 1}")
            break
    if policy in ("step", "multistep", "exp") and param.gamma < 0:
        warn_about(where, f"lr_policy '{policy}' with gamma {param.gamma:g} < 0: the learning rate changes sign")
    if param.base_lr == 0:
        warn_about(where, "base_lr is 0: the weights will never change")
    if param.clip_gradients == 0:
        warn_about(where, "clip_gradients is 0: every gradient is scaled to zero (use -1 to turn clipping off)")
    if solver_type == "SGD" and param.momentum == 1:
        warn_about(where, "momentum is 1: the update never forgets a gradient and grows without bound")


def _check_lr_policy(param, where: str) -> None:
    policy = param.lr_policy or "fixed"
    if policy == "step" and param.stepsize <= 0:
        raise _refuse(where, f"lr_policy 'step' needs stepsize > 0 (it is {param.stepsize})")
    if policy == "poly" and param.max_iter <= 0:
        raise _refuse(where, f"lr_policy 'poly' needs max_iter > 0 (it is {param.max_iter})")
    if policy == "inv" and param.gamma < 0 and 1.0 + param.gamma * max(param.max_iter, 1) <= 0:
        raise _refuse(where, f"lr_policy 'inv' with gamma {param.gamma:g}: 1 + gamma * iter reaches 0 "
                             f"before max_iter {param.max_iter} (use gamma >= 0)")


# ---------------------------------------------------------------------------
# snapshots
# ---------------------------------------------------------------------------
def check_prefix_place(prefix: str, solver_path: str | None = None) -> None:
    """SnapshotError for a ``snapshot_prefix`` (as written in the solver, relative to
    its folder) that no snapshot can ever go to: a NUL in it, a kernel folder (/proc ...)."""
    if "\0" in prefix:
        raise SnapshotError(f"snapshot_prefix {prefix!r}: a path cannot contain a NUL character")
    base = os.path.dirname(os.path.abspath(solver_path)) if solver_path else os.getcwd()
    real = os.path.realpath(os.path.dirname(os.path.join(base, prefix)) or base)
    if any(real == p or real.startswith(p + os.sep) for p in PSEUDO_FOLDERS):
        raise SnapshotError(f"cannot write snapshots to snapshot_prefix '{prefix}': '{real}' is a "
                            f"system folder")


def check_snapshot_prefix(prefix: str) -> None:
    """SnapshotError unless files ``<prefix>_iter_N...`` can be written: the folder
    exists or can be created and a probe file can be written in it."""
    check_prefix_place(prefix)
    folder = os.path.dirname(os.path.abspath(prefix))
    from .snapshot_location import existing_ancestor
    existing = existing_ancestor(folder)
    if not os.path.isdir(existing):
        raise SnapshotError(f"cannot write snapshots to snapshot_prefix '{prefix}': '{existing}' is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".snapshot-probe.", suffix=".tmp", dir=existing)
    except OSError as exc:
        raise SnapshotError(f"cannot write snapshots to snapshot_prefix '{prefix}': folder '{existing}': "
                            f"{exc.strerror}") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


def sweep_stale_temporaries(prefix: str) -> list[str]:
    """Remove the temporary files a killed writer left beside snapshots of ``prefix``
    (``.<stem>_iter_N.caffemodel.<pid>.XXXX.tmp`` of a process that no longer runs).
    Returns the removed paths."""
    folder = os.path.dirname(os.path.abspath(prefix))
    stem = os.path.basename(prefix)
    pattern = re.compile(r"^\." + re.escape(stem) + r"_iter_\d+\.(caffemodel|solverstate)(\.h5)?\."
                         r"(?:(\d+)\.)?[^/]*\.tmp$")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in names:
        match = pattern.match(name)
        if match is None:
            continue
        pid = match.group(3)
        if pid is not None and _process_alive(int(pid)):
            continue
        path = os.path.join(folder, name)
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def warn_if_nothing_to_learn(net, where: str) -> None:
    """EngineWarning for a training net without layers or learnable parameters."""
    if not net.layers:
        warn_about(where, "the net has no layers: there is nothing to train")
    elif not net.learnable_params:
        warn_about(where, "the net has no learnable parameters: training changes nothing")
