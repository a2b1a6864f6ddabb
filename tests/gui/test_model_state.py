"""gui.model.state: one capture / restore for the rewind timeline and the solver
process; data layers' positions are the engine's own (HDF5 files included)."""
from __future__ import annotations

import pickle

import numpy

import engine
from gui.model.state import capture, restore


def _mlp(data_dir):
    return engine.get_solver(str(data_dir / "lenet" / "mlp_solver.prototxt"))


def _state(solver):
    return [b.data.copy() for b in solver.net.learnable_params], solver.iter, solver.smoothed_loss


def test_restore_then_replay_across_hdf5_files_is_bit_exact(data_dir):
    solver = _mlp(data_dir)
    solver.step(3)  # 4 batches of 64 rows per file: the replay crosses into the second file
    saved = capture(solver)
    solver.step(3)
    live = _state(solver)
    restore(solver, saved)
    assert solver.iter == 3
    solver.step(3)
    replayed = _state(solver)
    assert live[1:] == replayed[1:]
    for a, b in zip(live[0], replayed[0]):
        assert numpy.array_equal(a, b)


def test_a_pickled_checkpoint_restores_into_another_solver(data_dir):
    """What the hand-over to the solver process does: the other side reads the files itself."""
    solver = _mlp(data_dir)
    solver.step(5)
    sent = pickle.loads(pickle.dumps(capture(solver)))
    other = _mlp(data_dir)
    restore(other, sent)
    solver.step(2)
    other.step(2)
    for a, b in zip(solver.net.learnable_params, other.net.learnable_params):
        assert numpy.array_equal(a.data, b.data)
