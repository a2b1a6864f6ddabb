"""Host<->device transfers counted on the strict stand-in, against the budget of
docs/gpu.md:

- ``solver.step()`` with no observers, after the first iteration: host->device only the
  data layers' tops (the batch, as Caffe copies it); device->host only scalars: the
  loss, SoftmaxWithLoss's label check and the NaN/inf check of the gradients
  (3 scalars an iteration for the spiral net);
- a step event: the data layer's batch, and scalars only (the NaN trap's checks, the loss);
- a frame: one device->host copy per array the views show, nothing else.
"""
import pickle

import numpy

import engine
from engine import strict_device
from gui.model import solver_process
from gui.model.session import Session
from tests.gui.debug_nets import SPIRAL

SCALAR_BYTES = 8


def _spiral_on_device():
    solver = engine.get_solver(str(SPIRAL), device="gpu")
    solver.param.test_interval = 0  # the budget of training iterations (tests add their own reads)
    return solver


def _data_bytes(net):
    data_layers = [i for i in range(len(net.layers)) if not net.bottom_names[i]]
    return sum(blob.data.nbytes for i in data_layers for blob in net.tops_of(i))


def test_step_reads_only_scalars_and_writes_only_the_batch(strict):
    solver = _spiral_on_device()
    solver.step(1)  # warm-up: buffers laid out
    with strict_device.counting() as log:
        solver.step(5)
    assert all(t.nbytes <= SCALAR_BYTES for t in log.of(strict_device.D2H)), log.summary()
    assert log.d2h == 5 * 3, log.summary()
    assert log.h2d == 5 * 2 and log.h2d_bytes == 5 * _data_bytes(solver.net), log.summary()
    assert {t.where.rsplit("/", 1)[-1].split(":")[0] for t in log.of(strict_device.H2D)} == {"data_common.py"}


def test_step_without_checks_reads_only_the_loss_and_the_labels(strict):
    solver = _spiral_on_device()
    solver.check_finite = False
    solver.step(1)
    with strict_device.counting() as log:
        solver.step(4)
    assert log.d2h == 4 * 2, log.summary()


def test_each_step_event_moves_scalars_and_the_batch_only(strict):
    solver = _spiral_on_device()
    solver.step(1)
    net = solver.net
    for _ in range(2):
        events = solver.iteration_events()
        while True:
            with strict_device.counting() as log:
                event = next(events, None)
            if event is None:
                break
            assert all(t.nbytes <= SCALAR_BYTES for t in log.of(strict_device.D2H)), (event, log.summary())
            if event.kind in ("forward", "backward"):
                i = event.layer_index
                arrays = len(net.tops_of(i)) + len(net.bottoms_of(i)) + len(net.layers[i].blobs)
                assert log.d2h <= arrays + 2, (event, log.summary())
                is_data = event.kind == "forward" and not net.bottom_names[i]
                assert log.h2d == (len(net.tops_of(i)) if is_data else 0), (event, log.summary())
            else:
                assert log.h2d == 0 and log.d2h <= 1, (event, log.summary())


def _shown_arrays(views):
    keys = ("W", "b", "a", "dW", "db", "update_W", "update_b", "delta", "delta_down")
    return [a for view in views.values() for a in (getattr(view, k) for k in keys) if a is not None]


def test_a_frame_copies_only_the_arrays_it_shows(strict):
    session = Session()
    session.load(str(SPIRAL), "gpu")
    for _ in range(3):
        session.step_iteration()
    names = session.inner_product_layers()[:1]
    with strict_device.counting() as log:
        views = session.views(names)
        session.info()
    shown = _shown_arrays(views)
    assert len(shown) >= 7
    assert log.h2d == 0 and log.d2h == len(shown), log.summary()
    assert log.d2h_bytes == sum(a.nbytes for a in shown)
    with strict_device.counting() as log:
        session.views([])
    assert log.transfers == []


def test_solver_process_hand_over_on_the_device(strict):
    """The window's state goes to the solver process and comes back (pickled, as on the
    pipe), run in this process: the device solver ends where a CPU one does, bit for bit."""
    import multiprocessing

    window = Session()
    window.load(str(SPIRAL), "gpu")
    window.step_iteration()
    order = pickle.loads(pickle.dumps(solver_process.make_order(window, 7, None)))
    child = solver_process._build_session(order)
    assert child.solver.device == "gpu"
    parent_end, child_end = multiprocessing.Pipe()
    sender = solver_process._Sender(child_end)
    try:
        result = solver_process._child_run(child, order, sender, solver_process._Shared(multiprocessing))
    finally:
        sender.close()
        parent_end.close()
        child_end.close()
    assert result.error is None
    solver_process.absorb(window, pickle.loads(pickle.dumps(result)))
    reference = Session()
    reference.load(str(SPIRAL), "cpu")
    for _ in range(8):
        reference.step_iteration()
    assert window.solver.iter == reference.solver.iter == 8
    assert window.solver.device == "gpu"
    for mine, theirs in zip(window.solver.net.learnable_params, reference.solver.net.learnable_params):
        numpy.testing.assert_array_equal(engine.backend.to_numpy(mine.data), theirs.data)
    assert window.solver.smoothed_loss == reference.solver.smoothed_loss
