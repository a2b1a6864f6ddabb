"""The iteration body's observers: they see Caffe's stages in order, and watching changes nothing."""
import numpy
import pytest

import engine
from engine.errors import NonFiniteError
from engine.events import CLIP_GRADIENTS, COMPUTE_UPDATE_VALUE, NET_UPDATE, NORMALIZE, REGULARIZE, Observer


@pytest.fixture
def spiral_solver_path(examples_dir):
    return str(examples_dir / "spiral_mlp" / "solver.prototxt")


class Recorder(Observer):
    def __init__(self):
        self.seen = []

    def on_start(self, solver):
        self.seen.append(("start", solver.iter))

    def before_layer(self, solver, phase, index):
        self.seen.append(("before", phase, solver.net.layers[index].name))

    def after_layer(self, solver, phase, index):
        self.seen.append(("after", phase, solver.net.layers[index].name))

    def on_gradients_ready(self, solver, loss):
        self.seen.append(("gradients", solver.iter))

    def after_stage(self, solver, stage, param_index, detail):
        self.seen.append(("stage", stage, param_index))

    def on_iteration_end(self, solver, loss):
        self.seen.append(("end", solver.iter))


@pytest.mark.parametrize("kind", ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"])
def test_an_observed_run_is_bit_for_bit_the_fast_run(spiral_solver_path, kind):
    fast = engine.get_solver(spiral_solver_path)
    watched = engine.get_solver(spiral_solver_path)
    for solver in (fast, watched):
        solver.param.type = kind
        solver.param.weight_decay = 0.001
        solver.param.clip_gradients = 0.5
    fast = engine.solver.solver_class(kind)(fast.param, path=fast.path)
    watched = engine.solver.solver_class(kind)(watched.param, path=watched.path)
    watched.observers.append(Recorder())
    assert fast._flat_params() is not None  # the fast path really runs
    fast.step(5)
    watched.step(5)
    for a, b in zip(fast.net.learnable_params, watched.net.learnable_params):
        assert numpy.array_equal(a.data, b.data)
        assert numpy.array_equal(a.diff, b.diff)
    for a, b in zip(fast.history, watched.history):
        assert numpy.array_equal(a, b)


def test_observers_see_caffes_stages_in_order(spiral_solver_path):
    solver = engine.get_solver(spiral_solver_path)
    recorder = Recorder()
    solver.observers.append(recorder)
    solver.step(1)
    seen = recorder.seen
    names = [layer.name for layer in solver.net.layers]
    assert seen[0] == ("start", 0) and seen[-1] == ("end", 1)
    forward = [s[2] for s in seen if s[:2] == ("after", "forward")]
    assert forward == names
    backward = [s[2] for s in seen if s[:2] == ("after", "backward")]
    assert backward == [n for i, n in reversed(list(enumerate(names))) if solver.net.layer_need_backward[i]]
    stages = [s[1:] for s in seen if s[0] == "stage"]
    count = len(solver.net.learnable_params)
    expected = [(CLIP_GRADIENTS, None)]
    for i in range(count):
        expected += [(NORMALIZE, i), (REGULARIZE, i), (COMPUTE_UPDATE_VALUE, i)]
    assert stages == expected + [(NET_UPDATE, None)]
    assert seen.index(("gradients", 0)) < seen.index(("stage", CLIP_GRADIENTS, None))


def test_an_observer_can_stop_the_iteration_before_the_weights_change(spiral_solver_path):
    class Stop(Observer):
        def after_layer(self, solver, phase, index):
            if phase == "backward":
                raise NonFiniteError(solver.iter, solver.net.layers[index].name, "x", phase)

    solver = engine.get_solver(spiral_solver_path)
    before = [b.data.copy() for b in solver.net.learnable_params]
    solver.observers.append(Stop())
    with pytest.raises(NonFiniteError):
        solver.step(1)
    assert solver.iter == 0
    for a, b in zip(before, solver.net.learnable_params):
        assert numpy.array_equal(a, b.data)
