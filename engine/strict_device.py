"""A strict stand-in for cupy, for tests only: device arrays that live in host
memory (each wraps a numpy array, so every value is numpy's, bit for bit) but
refuse every implicit host<->device crossing where cupy would raise or copy
silently, and count every explicit transfer.

It is never selected by the shipped app. Tests install it as the GPU array module
with :func:`installed` (which calls ``engine.backend.use_device_module``); nets and
solvers built on device ``"gpu"`` then get its arrays, and any code that mixes
host and device arrays fails here as it would on a CUDA machine.

What each crossing does on cupy (13/14), and here:

- ``numpy.asarray(d)``, ``numpy.array(d)``, ``host[...] = d``: TypeError -> refused;
- ``float/int/complex(d)``, ``bool(d)``, ``d`` as an index, ``x in d``: a silent copy
  and sync -> refused;
- ``d.tolist()``, ``d.tobytes()``, ``f"{d:.3f}"``, ``pickle.dumps(d)``: a silent copy -> refused;
- ``d + host_array``, ufuncs / ``xp.*`` / ``numpy.*`` with a host array (0-d too):
  TypeError -> refused;
- ``d[...] = host_array`` or a list: ValueError (``fill``), or a silent copy with an
  advanced index -> refused;
- ``d[host_index]``, ``d[[0, 2]]``: a silent copy of the index -> refused;
- ``d * numpy.float32(2)``, ``d * 2.0``: a kernel argument, no copy -> allowed;
- ``d.get()``, ``xp.asnumpy(d)``, ``d.item()``, ``repr(d)``: copies -> allowed, counted
  device->host;
- ``xp.asarray(h)``, ``xp.array(h)``, ``d.set(h)``: copies -> allowed, counted host->device.

Refused crossings raise :class:`ImplicitTransferError` (a TypeError and a ValueError).
Reductions and scalar indexing return 0-d device arrays, as in cupy (numpy
would give host scalars). Every counted transfer is recorded with its size and
the engine line that asked for it (:class:`TransferLog`, :func:`counting`).
"""
from __future__ import annotations

import contextlib
import sys
import types
from dataclasses import dataclass, field
from typing import Iterator

import numpy
from numpy.lib.mixins import NDArrayOperatorsMixin

H2D, D2H = "host->device", "device->host"
_SCALARS = (int, float, complex, bool, numpy.generic)


class ImplicitTransferError(TypeError, ValueError):
    """A host/device crossing that cupy would refuse (with a TypeError, or a ValueError for
    ``d[...] = host_array``) or make silently (see the module table)."""


# -- counting ----------------------------------------------------------------
@dataclass
class Transfer:
    direction: str  # H2D or D2H
    nbytes: int
    what: str  # the call: "asarray", "get", "item", ...
    where: str  # file:line of the first caller outside this module and engine/backend.py


@dataclass
class TransferLog:
    """Transfers counted while this log was active (see :func:`counting`)."""
    transfers: list[Transfer] = field(default_factory=list)

    def of(self, direction: str) -> list[Transfer]:
        return [t for t in self.transfers if t.direction == direction]

    @property
    def h2d(self) -> int:
        return len(self.of(H2D))

    @property
    def d2h(self) -> int:
        return len(self.of(D2H))

    @property
    def h2d_bytes(self) -> int:
        return sum(t.nbytes for t in self.of(H2D))

    @property
    def d2h_bytes(self) -> int:
        return sum(t.nbytes for t in self.of(D2H))

    def clear(self) -> None:
        self.transfers.clear()

    def summary(self) -> str:
        """One line per transfer (for assertion messages)."""
        return "\n".join(f"{t.direction} {t.nbytes} B {t.what} at {t.where}" for t in self.transfers) or "none"


#: every transfer since the stand-in was imported (or last cleared)
total = TransferLog()
_active: list[TransferLog] = [total]


@contextlib.contextmanager
def counting() -> Iterator[TransferLog]:
    """Count the transfers made inside the ``with`` block into a fresh log."""
    log = TransferLog()
    _active.append(log)
    try:
        yield log
    finally:
        _active.remove(log)


_SKIP_FILES = (__file__.rstrip("c"), __file__.replace("strict_device.py", "backend.py"))


def _caller() -> str:
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in _SKIP_FILES:
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _count(direction: str, nbytes: int, what: str) -> None:
    record = Transfer(direction, int(nbytes), what, _caller())
    for log in _active:
        log.transfers.append(record)


# -- operands ----------------------------------------------------------------
def _refuse(what: str, cupy_does: str, instead: str) -> ImplicitTransferError:
    return ImplicitTransferError(f"strict device: {what} ({cupy_does}); {instead}")


def _host_operand_error(value, where: str) -> ImplicitTransferError:
    kind = "a list" if isinstance(value, list) else f"a host {type(value).__name__}"
    return _refuse(f"{kind} mixed with device arrays in {where}",
                   "cupy raises TypeError or copies it silently",
                   "move it first with backend.to_device(...) or xp.asarray(...)")


def _unwrap(value, where: str):
    """The numpy array inside a device array; scalars, dtypes, shapes pass; host arrays are refused."""
    if type(value) is ndarray:
        return value._a
    if isinstance(value, numpy.ndarray):
        raise _host_operand_error(value, where)
    if isinstance(value, (list, tuple)):
        items = [_unwrap(v, where) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _wrap(value, owners: dict):
    """Device arrays for numpy results (0-d for numpy scalars); ``owners`` maps the
    id of an unwrapped argument to its wrapper, so ``out=`` results keep their identity."""
    if isinstance(value, numpy.ndarray):
        owner = owners.get(id(value))
        if owner is not None and owner._a is value:
            return owner
        return ndarray._from(value)
    if isinstance(value, numpy.generic):
        return ndarray._from(numpy.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v, owners) for v in value)
    if isinstance(value, list):
        return [_wrap(v, owners) for v in value]
    return value


def _owners(args, kwargs) -> dict:
    found: dict = {}

    def visit(value):
        if type(value) is ndarray:
            found[id(value._a)] = value
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
    visit(args)
    visit(list(kwargs.values()))
    return found


def _apply(func, args, kwargs, where: str):
    """``func`` on the unwrapped arguments, its results wrapped."""
    owners = _owners(args, kwargs)
    inner_args = _unwrap(tuple(args), where)
    inner_kwargs = {k: _unwrap(v, where) for k, v in kwargs.items()}
    return _wrap(func(*inner_args, **inner_kwargs), owners)


def _check_index(key):
    if isinstance(key, tuple):
        for k in key:
            _check_index(k)
        return
    if isinstance(key, (numpy.ndarray, list)):
        raise _refuse("indexing a device array with a host array or list",
                      "cupy copies the index to the device silently",
                      "make the index a device array (xp.asarray) or use slices")


def _with_ellipsis(key):
    return (*key, Ellipsis) if isinstance(key, tuple) else (key, Ellipsis)


# -- the array ---------------------------------------------------------------
_METHODS = frozenset((
    "all", "any", "argmax", "argmin", "argsort", "astype", "clip", "conj", "copy", "cumprod", "cumsum",
    "diagonal", "dot", "flatten", "max", "mean", "min", "nonzero", "prod", "ravel", "repeat", "reshape",
    "round", "sort", "squeeze", "std", "sum", "swapaxes", "take", "trace", "transpose", "var", "view",
    "fill", "put", "partition", "argpartition", "compress", "choose"))
_PROPERTIES = frozenset(("shape", "dtype", "ndim", "size", "itemsize", "nbytes", "strides", "flags"))
_REFUSED = {
    "tolist": "copies to the host silently", "tobytes": "copies to the host silently",
    "tofile": "copies to the host silently", "dump": "copies to the host silently",
    "dumps": "copies to the host silently", "data": "is a device pointer, not host memory",
}


class ndarray(NDArrayOperatorsMixin):
    """A device array of the stand-in (cupy.ndarray's place); wraps a numpy array."""

    __slots__ = ("_a",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape, dtype=float):
        self._a = numpy.empty(shape, dtype=dtype)

    @classmethod
    def _from(cls, array: numpy.ndarray) -> "ndarray":
        self = object.__new__(cls)
        self._a = array
        return self

    # numpy protocols: compute on the device, refuse host operands
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        for value in inputs:
            if not isinstance(value, (ndarray, numpy.ndarray, list, tuple, *_SCALARS)):
                return NotImplemented
        return _apply(getattr(ufunc, method), inputs, kwargs, f"numpy.{ufunc.__name__}")

    def __array_function__(self, func, types_, args, kwargs):
        return _apply(func, args, kwargs, f"numpy.{func.__name__}")

    def __array__(self, dtype=None, copy=None):
        raise _refuse("numpy.asarray/numpy.array of a device array", "cupy raises TypeError",
                      "use backend.to_numpy(...) or .get()")

    # explicit transfers (counted)
    def get(self) -> numpy.ndarray:
        """A host copy (cupy's ``get``)."""
        _count(D2H, self._a.nbytes, "get")
        return self._a.copy()

    def set(self, host: numpy.ndarray) -> None:
        """Copy a host array of this shape into this array (cupy's ``set``)."""
        if not isinstance(host, numpy.ndarray) or host.shape != self._a.shape:
            raise ValueError("set: a numpy array of the same shape is needed")
        _count(H2D, host.nbytes, "set")
        self._a[...] = host

    def item(self, *args):
        """One element as a Python scalar: a device->host read (and a sync on cupy)."""
        _count(D2H, self._a.itemsize, "item")
        return self._a.item(*args)

    # implicit crossings (refused)
    def _implicit_scalar(self, name: str):
        raise _refuse(f"{name}() of a device array", "cupy copies it to the host and syncs silently",
                      "read it once with .item() or backend.to_numpy(...), outside hot loops")

    def __float__(self):
        self._implicit_scalar("float")

    def __int__(self):
        self._implicit_scalar("int")

    def __complex__(self):
        self._implicit_scalar("complex")

    def __bool__(self):
        self._implicit_scalar("bool")

    def __index__(self):
        self._implicit_scalar("operator.index")

    def __contains__(self, value):
        self._implicit_scalar("'in'")

    def __format__(self, spec: str) -> str:
        if spec:
            self._implicit_scalar(f"format(..., {spec!r})")
        return str(self)

    def __reduce__(self):
        raise _refuse("pickling a device array", "cupy copies it to the host silently",
                      "send backend.to_numpy(...) instead")

    def __repr__(self) -> str:
        _count(D2H, self._a.nbytes, "repr")
        return "strict_device." + repr(self._a)

    __str__ = __repr__

    # metadata and views
    def __getattr__(self, name: str):
        if name in _PROPERTIES:
            return getattr(self._a, name)
        if name in _METHODS:
            method = getattr(self._a, name)
            owners = {id(self._a): self}
            return lambda *args, **kwargs: _wrap(
                method(*_unwrap(args, f".{name}"), **{k: _unwrap(v, f".{name}") for k, v in kwargs.items()}),
                {**owners, **_owners(args, kwargs)})
        if name in _REFUSED:
            raise _refuse(f".{name} of a device array", f"cupy's {_REFUSED[name]}",
                          "use backend.to_numpy(...) first")
        raise AttributeError(f"strict device array has no attribute '{name}'")

    @property
    def T(self) -> "ndarray":
        return ndarray._from(self._a.T)

    @property
    def real(self) -> "ndarray":
        return ndarray._from(self._a.real)

    @property
    def base(self):
        base = self._a.base
        return None if base is None else ndarray._from(base)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield self[i]

    def __getitem__(self, key):
        _check_index(key)
        inner = _unwrap(key, "an index")
        result = self._a[inner]
        if isinstance(result, numpy.generic):  # cupy returns a 0-d view, not a host scalar
            result = self._a[_with_ellipsis(inner)]
        return ndarray._from(result)

    def __setitem__(self, key, value) -> None:
        _check_index(key)
        if isinstance(value, (numpy.ndarray, list)):
            raise _refuse("assigning a host array or list into a device array",
                          "cupy raises ValueError, or with an advanced index copies it silently",
                          "use backend.to_device(...) or xp.asarray(...) (counted)")
        self._a[_unwrap(key, "an index")] = _unwrap(value, "an assignment")

    def __copy__(self) -> "ndarray":
        return ndarray._from(self._a.copy())

    def __deepcopy__(self, memo) -> "ndarray":
        return ndarray._from(self._a.copy())


# -- the module ----------------------------------------------------------------
class _Ufunc:
    """A numpy ufunc that takes device arrays (and scalars) only."""

    def __init__(self, ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args, **kwargs):
        return _apply(self._ufunc, args, kwargs, f"xp.{self.__name__}")

    def __getattr__(self, name: str):
        inner = getattr(self._ufunc, name)
        if not callable(inner):
            return inner
        return lambda *args, **kwargs: _apply(inner, args, kwargs, f"xp.{self.__name__}.{name}")


class _Namespace:
    """numpy (or one of its submodules) with device arrays in and out."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name: str):
        value = getattr(self._module, name)
        wrapped: object
        if isinstance(value, numpy.ufunc):
            wrapped = _Ufunc(value)
        elif isinstance(value, types.ModuleType):
            wrapped = _Namespace(value)
        elif isinstance(value, type) or not callable(value):
            wrapped = value  # dtypes, constants, classes: the same objects as numpy's (as cupy's are)
        else:
            wrapped = self._function(name, value)
        self.__dict__[name] = wrapped
        return wrapped

    @staticmethod
    def _function(name, func):
        def call(*args, **kwargs):
            return _apply(func, args, kwargs, f"xp.{name}")
        call.__name__ = name
        return call


class StrictModule(_Namespace):
    """The stand-in's ``cupy``: numpy's functions on device arrays, plus cupy's transfers."""

    ndarray = ndarray  # cupy.ndarray's place

    def __init__(self):
        super().__init__(numpy)
        self.cuda = _FakeCuda()
        self.__version__ = "strict stand-in (numpy " + numpy.__version__ + ")"

    @staticmethod
    def asarray(value, dtype=None, order=None) -> "StrictArray":
        """A device array: no copy for one already on the device, a counted host->device copy otherwise."""
        if type(value) is ndarray:
            return value if dtype is None or value.dtype == dtype else value.astype(dtype)
        host = numpy.array(value, dtype=dtype, order=order or "K", copy=True)
        _count(H2D, host.nbytes, "asarray")
        return ndarray._from(host)

    @staticmethod
    def array(value, dtype=None, copy=True, order="K") -> "StrictArray":
        if type(value) is ndarray:
            return ndarray._from(value._a.astype(dtype or value.dtype, order=order, copy=True))
        return StrictModule.asarray(value, dtype=dtype, order=order)

    @staticmethod
    def asnumpy(value) -> numpy.ndarray:
        """A host copy of a device array (counted); host values pass through."""
        if type(value) is ndarray:
            return value.get()
        return numpy.asarray(value)

    @staticmethod
    def get_array_module(*arrays):
        return xp if any(type(a) is ndarray for a in arrays) else numpy


class _FakeDevice:
    def __init__(self, index: int = 0):
        self.id = index

    def use(self) -> None:
        pass

    def synchronize(self) -> None:
        pass


class _FakeCuda:
    """The few ``cupy.cuda`` calls the engine makes (one fake device)."""

    Device = _FakeDevice

    class runtime:  # noqa: N801  (cupy's name)
        @staticmethod
        def getDeviceCount() -> int:  # noqa: N802
            return 1

        @staticmethod
        def getDeviceProperties(index: int) -> dict:  # noqa: N802
            return {"name": b"strict device stand-in (host memory)", "totalGlobalMem": 0}


StrictArray = ndarray

#: the module object tests install as the GPU's array module
xp = StrictModule()


@contextlib.contextmanager
def installed() -> Iterator[TransferLog]:
    """Tests only: the stand-in is the GPU array module inside the block (device
    ``"gpu"`` builds its arrays); yields a log of the transfers made in the block."""
    from . import backend
    previous, mode = backend.use_device_module(xp), backend.current_mode()
    try:
        with counting() as log:
            yield log
    finally:
        backend.use_device_module(previous)
        if mode == "cpu":
            backend.set_mode_cpu()
