"""pycaffe's solvers (``caffe.SGDSolver(path)``, ``caffe.get_solver(path)``, ...)
over the engine's solvers, with Caffe's behaviour where pycaffe shows it:
``step`` snapshots every ``snapshot`` iterations, a relative ``snapshot_prefix``
is taken relative to the working directory, callbacks run around the gradients."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

from .. import solver as engine_solver
from ..proto import caffe_pb2 as _caffe_pb2
from ..prototxt import parse_solver
from ._blob import FOLLOWERS, device_synced
from ._net import Net, check_file
from .python_layer import PYCAFFE_ACCESS

caffe_pb2: Any = _caffe_pb2  # a generated module: no static types


class _PyCaffeBehaviour:
    """Mixed into an engine solver class: pycaffe's callbacks and Caffe's
    working-directory-relative snapshot prefix."""

    pycaffe_callbacks: list[tuple[Callable[[], Any], Callable[[], Any]]]
    pycaffe_net: Net | None = None  # the train net's pycaffe view (its layer callbacks)

    def _forward_backward(self) -> float:
        for on_start, _ in self.pycaffe_callbacks:
            on_start()
        view = self.pycaffe_net
        if view is not None and view._has_callbacks():
            passes = max(1, self.param.iter_size)  # type: ignore[attr-defined]
            loss = sum(view._forward_backward() for _ in range(passes)) / passes
        else:
            loss = super()._forward_backward()  # type: ignore[misc]
        for _, on_gradients_ready in self.pycaffe_callbacks:
            on_gradients_ready()
        return loss

    def snapshot(self) -> list[str]:
        with _prefix_from_working_directory(self.param):  # type: ignore[attr-defined]
            return super().snapshot()  # type: ignore[misc]


@contextlib.contextmanager
def _prefix_from_working_directory(param: Any) -> Iterator[None]:
    """Caffe resolves a relative snapshot_prefix against the working directory."""
    prefix = param.snapshot_prefix
    if not prefix or os.path.isabs(prefix):
        yield
        return
    absolute = os.path.join(os.getcwd(), prefix)
    param.snapshot_prefix = absolute + (os.sep if prefix.endswith(("/", os.sep)) else "")
    try:
        yield
    finally:
        param.snapshot_prefix = prefix


_behaving: dict[type, type] = {}


def _pycaffe_class(cls: type) -> type:
    """``cls`` with pycaffe's behaviour mixed in (one subclass per engine class)."""
    found = _behaving.get(cls)
    if found is None:
        found = _behaving[cls] = type(f"PyCaffe{cls.__name__}", (_PyCaffeBehaviour, cls), {})
    return found


class Solver:
    """``caffe.Solver``: ``net``, ``test_nets``, ``iter``, ``step``, ``solve``,
    ``restore``, ``snapshot``, ``apply_update``, ``param``, ``add_callback``."""

    solver_type: str | None = None  # the engine solver type this class always builds

    def __init__(self, filename):
        path = check_file(filename, "solver file")
        param, _ = parse_solver(path)
        self._build(param, path, self.solver_type or _type_of(param))

    def _build(self, param: Any, path: str, kind: str) -> None:
        cls = _pycaffe_class(engine_solver.solver_class(kind))
        solver: Any = object.__new__(cls)
        solver.pycaffe_callbacks = []
        solver.__init__(param, path=path, python_layers=PYCAFFE_ACCESS)  # sys.path, as pycaffe
        solver.auto_snapshot = True  # Caffe's Step snapshots every `snapshot` iterations
        self._solver = solver
        self._net = solver.pycaffe_net = Net.wrap(solver.net)
        self._test_nets = [Net.wrap(n) for n in solver.test_nets]
        FOLLOWERS.add(self)

    def _move_to(self, device: str) -> None:
        """Follow caffe.set_mode_gpu / set_mode_cpu (Python-layer nets stay on the CPU)."""
        nets = [self._solver.net] + list(self._solver.test_nets)
        if self._solver.device != device and \
                not any(layer.type_name == "Python" for net in nets for layer in net.layers):
            self._solver.to(device)

    @property
    def net(self) -> Net:
        return self._net

    @property
    def test_nets(self) -> list[Net]:
        return self._test_nets

    @property
    def iter(self) -> int:
        return self._solver.iter

    @property
    def param(self) -> Any:
        return self._solver.param

    @property
    def type(self) -> str:
        return self._solver.type_name

    def step(self, iters: int) -> None:
        """Run ``iters`` training iterations (testing and snapshotting as Caffe's Step)."""
        with device_synced():
            self._solver.step(int(iters))

    def solve(self, resume_file=None) -> None:
        """Train to max_iter (resuming from ``resume_file`` when given), as Caffe's Solve."""
        if resume_file:
            self.restore(resume_file)
        with device_synced():
            self._solver.solve()

    def restore(self, state_file) -> None:
        path = check_file(state_file, "solver state file")
        with device_synced():
            self._solver.restore(path)

    def snapshot(self) -> None:
        """Write ``<prefix>_iter_<iter>.caffemodel`` and ``.solverstate``."""
        with device_synced():
            self._solver.snapshot()

    def apply_update(self) -> None:
        """Caffe's ApplyUpdate: turn the current diffs into updates (clip, normalize,
        regularize, the solver's rule) and apply them; ``iter`` does not change."""
        solver = self._solver
        with device_synced():
            rate = solver._rate()
            solver.clip_gradients()
            flat = solver._flat_params()
            if flat is None:
                solver._apply_update_values(rate)
                solver.net.update()
            else:
                flat.materialize_diffs()
                solver._apply_update_values_flat(flat, rate)

    def add_callback(self, on_start: Callable[[], Any], on_gradients_ready: Callable[[], Any]) -> None:
        """Call ``on_start()`` before each iteration's forward/backward and
        ``on_gradients_ready()`` after it, before the update."""
        self._solver.pycaffe_callbacks.append((on_start, on_gradients_ready))

    def share_weights(self, net: Net) -> None:
        """Make ``net`` use this solver's trained weights."""
        with device_synced():
            net._net.share_weights(self._solver.net)

    def __repr__(self) -> str:
        return f"<caffe {type(self).__name__} iter={self.iter}>"


def _type_of(param: Any) -> str:
    if param.HasField("type") or not param.HasField("solver_type"):
        return param.type
    return engine_solver._LEGACY_TYPES[param.solver_type]


class SGDSolver(Solver):
    solver_type = "SGD"


class NesterovSolver(Solver):
    solver_type = "Nesterov"


class AdaGradSolver(Solver):
    solver_type = "AdaGrad"


class RMSPropSolver(Solver):
    solver_type = "RMSProp"


class AdaDeltaSolver(Solver):
    solver_type = "AdaDelta"


class AdamSolver(Solver):
    solver_type = "Adam"


_BY_TYPE = {cls.solver_type: cls for cls in (SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver,
                                              AdaDeltaSolver, AdamSolver)}


def get_solver(filename) -> Solver:
    """The solver of the file's ``type`` (SGD when none is given), as ``caffe.get_solver``."""
    path = check_file(filename, "solver file")
    param, _ = parse_solver(path)
    kind = _type_of(param)
    cls = _BY_TYPE.get(kind, Solver)
    solver = cls.__new__(cls)
    solver._build(param, path, kind)
    return solver
