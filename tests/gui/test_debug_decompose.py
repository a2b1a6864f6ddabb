"""The update taken apart: the re-derived ΔW is the update the engine applied, and the pieces sum to it."""
import numpy
import pytest

from engine.solver import solver_class
from gui.model.decompose import UpdateCapture, decompose, param_index, step_with_decomposition

from .debug_nets import make_solver


def _check_against_engine(solver, warmup=3):
    solver.step(warmup)  # non-zero momentum history
    before = [b.data.copy() for b in solver.net.learnable_params]
    found, loss = step_with_decomposition(solver)
    assert numpy.isfinite(loss)
    for i, blob in enumerate(solver.net.learnable_params):
        d = found[i]
        applied = blob.diff  # Caffe keeps the applied update in the diff after Update
        assert numpy.array_equal(d.update, applied), d.param
        assert numpy.array_equal(d.w_after, blob.data), d.param
        assert numpy.array_equal(d.term("W_before").array, before[i])
        assert numpy.allclose(before[i] - d.update, blob.data, rtol=0, atol=0)
    return found


def test_sgd_with_clipping_and_l2_decay_matches_and_pieces_sum_to_the_update(tmp_path):
    solver = make_solver(tmp_path, clip_gradients=0.05, weight_decay=0.01)
    found = _check_against_engine(solver)
    d = found[param_index(solver.net, "ip2", 0)]
    assert d.pieces == ["momentum_term", "gradient_term", "decay_step"]
    numpy.testing.assert_allclose(d.pieces_sum(), d.update, rtol=1e-5, atol=1e-9)
    # the pieces are what their formulas say, checked with independent arithmetic
    m, lr = d.numbers["momentum"], d.numbers["local lr"]
    W = d.term("W_before").array.astype(numpy.float64)
    numpy.testing.assert_allclose(d.term("decay_step").array, lr * 0.01 * W, rtol=1e-5, atol=1e-12)
    numpy.testing.assert_allclose(d.term("momentum_term").array, m * d.term("history").array, rtol=1e-6)
    raw = d.term("dW").array
    clipped = d.term("clipped").array
    scale = clipped.ravel()[numpy.argmax(numpy.abs(raw))] / raw.ravel()[numpy.argmax(numpy.abs(raw))]
    assert scale < 1  # clipping happened
    norm = numpy.sqrt(sum(float((g.astype(numpy.float64) ** 2).sum()) for g in
                          [found[i].term("dW").array for i in found]))
    assert scale == pytest.approx(0.05 / norm, rel=1e-5)


def test_raw_dW_is_the_backward_product(tmp_path):
    solver = make_solver(tmp_path)
    solver.step(2)
    solver.capture_gradients = True
    solver.net.capture_layers = {"ip2"}
    found, _ = step_with_decomposition(solver, [param_index(solver.net, "ip2", 0)])
    d = found[param_index(solver.net, "ip2", 0)]
    delta = solver.net.captured["ip2"]["top_diff"].astype(numpy.float64)
    # a = ip2's input (ip1 after TanH and Dropout, in place); the update does not touch it
    a = solver.net.blobs["ip1"].data.astype(numpy.float64)
    numpy.testing.assert_allclose(d.term("dW").array, delta.T @ a, rtol=1e-4, atol=1e-6)


def test_l1_regularization_uses_sign_of_W(tmp_path):
    solver = make_solver(tmp_path, regularization_type="L1", weight_decay=0.01)
    found = _check_against_engine(solver)
    d = found[0]
    numpy.testing.assert_allclose(d.term("decay").array, 0.01 * numpy.sign(d.term("W_before").array), rtol=1e-6)


@pytest.mark.parametrize("kind, extra", [("Nesterov", {}), ("Adam", {"momentum2": 0.999, "momentum": 0.9}),
                                         ("AdaGrad", {"momentum": 0.0}), ("RMSProp", {"momentum": 0.0}),
                                         ("AdaDelta", {"momentum": 0.95, "base_lr": 1.0})])
def test_other_solvers_match_the_engine(tmp_path, kind, extra):
    solver = make_solver(tmp_path, type=kind, **extra)
    found = _check_against_engine(solver)
    if kind == "Nesterov":
        d = found[0]
        numpy.testing.assert_allclose(d.pieces_sum(), d.update, rtol=1e-5, atol=1e-9)


def test_nothing_captured_is_refused(tmp_path):
    solver = make_solver(tmp_path)
    capture = UpdateCapture([0])
    solver.observers.append(capture)
    solver.step(1)
    with pytest.raises(KeyError, match="not captured"):
        decompose(capture.last, 1)


def test_the_update_term_shows_the_engines_rule_text(tmp_path):
    solver = make_solver(tmp_path, type="Adam", momentum=0.9, momentum2=0.999)
    found, _ = step_with_decomposition(solver, [0])
    assert found[0].term("update").formula == solver_class("Adam").rule_text({"g": "g"})
    assert "β₂" in found[0].term("update").formula


def test_a_replayed_iteration_is_captured_as_it_ran(tmp_path):
    """Rewind replays from a checkpoint: the capture of the replay equals the live one, array for array."""
    from gui.model.timeline import capture, restore
    solver = make_solver(tmp_path, weight_decay=0.01, clip_gradients=0.1)
    solver.step(3)
    watcher = UpdateCapture()
    solver.observers.append(watcher)
    before = capture(solver)
    solver.step(1)
    live = watcher.last
    restore(solver, before)
    solver.step(1)
    replayed = watcher.last
    assert live is not replayed and live.iteration == replayed.iteration == 3
    for i, arrays in live.arrays.items():
        for key, array in arrays.items():
            assert numpy.array_equal(array, replayed.arrays[i][key]), (i, key)
        d = decompose(replayed, i)
        assert numpy.array_equal(d.update, solver.net.learnable_params[i].diff)
        assert numpy.array_equal(d.w_after, solver.net.learnable_params[i].data)
