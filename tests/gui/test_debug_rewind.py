"""Rewind: step back restores the full state; stepping forward again reproduces it."""
import numpy
import pytest

from engine import rng
from gui.debug.rewind import History, capture, restore

from .debug_nets import make_solver, spiral_solver, weights


def _state(solver):
    return (weights(solver), [h.copy() for h in solver.history], solver.iter, solver.current_step,
            solver.smoothed_loss, list(solver.losses), solver.learning_rate)


def _assert_same_state(a, b):
    for x, y in zip(a[0], b[0]):
        assert numpy.array_equal(x, y)
    for x, y in zip(a[1], b[1]):
        assert numpy.array_equal(x, y)
    assert a[2:] == b[2:]


def test_rewind_5_then_forward_5_gives_identical_numbers(tmp_path):
    solver = make_solver(tmp_path)  # shuffled data + Dropout: cursors and RNG matter
    history = History()
    history.step(solver, 6)
    before_rewind = _state(solver)
    for _ in range(5):
        history.step_back(solver)
    assert solver.iter == 1
    history.step(solver, 5)
    _assert_same_state(_state(solver), before_rewind)


def test_step_back_restores_the_earlier_state_exactly(tmp_path):
    solver = make_solver(tmp_path)
    history = History()
    history.step(solver, 3)
    at_three = _state(solver)
    history.step(solver, 5)  # iteration 7 runs with the stepped-down lr
    assert solver.current_step == 1
    for _ in range(5):
        history.step_back(solver)
    _assert_same_state(_state(solver), at_three)


def test_a_fresh_run_matches_a_rewound_run(tmp_path):
    """The rewound-and-replayed trajectory equals a never-rewound twin's, iteration by iteration."""
    twin = make_solver(tmp_path)
    twin.step(8)
    solver = make_solver(tmp_path)
    history = History()
    history.step(solver, 8)
    history.goto(solver, 2)
    history.step(solver, 6)
    for mine, theirs in zip(weights(solver), weights(twin)):
        assert numpy.array_equal(mine, theirs)
    assert solver.smoothed_loss == twin.smoothed_loss


def test_the_rng_and_the_data_cursor_are_part_of_the_state(tmp_path):
    solver = make_solver(tmp_path)
    solver.step(2)
    saved = capture(solver)
    cursor = solver.net.layers[0].batcher.cursor
    rng.generator().random(1000)  # move the random stream
    solver.step(3)
    restore(solver, saved)
    assert solver.net.layers[0].batcher.cursor == cursor
    assert rng.get_state() == saved.rng_state


def test_test_scores_rewind_across_a_test_interval():
    solver = spiral_solver()
    history = History()
    solver.step(98)
    history.step(solver, 4)  # tests at iteration 100
    scores = list(solver.test_scores)
    assert scores and scores[-1][0] == 100
    for _ in range(4):
        history.step_back(solver)
    assert solver.test_scores == scores[:-1]
    history.step(solver, 4)
    assert solver.test_scores == scores


def test_a_weight_edit_is_recorded_and_undone(tmp_path):
    solver = make_solver(tmp_path)
    history = History()
    history.step(solver, 2)
    original = weights(solver)
    history.edit_weight(solver, 0, (1, 0), 5.0)
    assert solver.net.learnable_params[0].data[1, 0] == 5.0
    assert "edit ip1.0[1, 0]" in history.current.label
    history.step(solver, 1)
    history.step_back(solver)  # undo the iteration
    assert solver.net.learnable_params[0].data[1, 0] == 5.0
    history.step_back(solver)  # undo the edit
    for mine, theirs in zip(weights(solver), original):
        assert numpy.array_equal(mine, theirs)


def test_memory_bound_limits_the_kept_states(tmp_path):
    solver = make_solver(tmp_path)
    one = capture(solver).nbytes
    history = History(capacity=100, max_bytes=one * 5 + one // 2)
    history.step(solver, 12)
    assert len(history) == 5
    assert history.effective_capacity() == 5
    assert history.memory_bytes <= history.max_bytes
    assert history.entries[-1].iteration == 12
    assert "5 / 5 states" in history.describe()
    history.set_capacity(3)
    assert len(history) == 3


def test_step_back_without_history_is_a_clear_error(tmp_path):
    solver = make_solver(tmp_path)
    history = History()
    with pytest.raises(IndexError, match="nothing to step back"):
        history.step_back(solver)


def test_sparse_checkpoints_replay_to_the_same_numbers(tmp_path):
    dense_solver = make_solver(tmp_path)
    dense = History()
    dense.step(dense_solver, 10)
    states = {}
    for position in (9, 7, 5, 2):
        dense.goto(dense_solver, position)
        states[position] = _state(dense_solver)
    solver = make_solver(tmp_path)
    sparse = History(checkpoint_every=4)
    sparse.step(solver, 10)
    assert [m.iteration for m in sparse.marks if m.checkpoint is not None] == [0, 4, 8]
    for position in (9, 7, 5, 2):
        sparse.goto(solver, position)
        _assert_same_state(_state(solver), states[position])
    sparse.step(solver, 8)  # from iteration 2 on, the same run again
    dense.goto(dense_solver, 10)
    _assert_same_state(_state(solver), _state(dense_solver))


def test_sparse_trimming_keeps_a_checkpoint_first(tmp_path):
    solver = make_solver(tmp_path)
    history = History(capacity=6, checkpoint_every=4)
    history.step(solver, 13)
    assert history.marks[0].checkpoint is not None
    assert len(history) <= 6 + 3
    history.goto(solver, 0)
    assert solver.iter == history.marks[0].iteration


def test_memory_accounting_follows_drops_and_rewinds(tmp_path):
    solver = make_solver(tmp_path)
    history = History(capacity=5, checkpoint_every=2)
    history.step(solver, 9)
    assert history.memory_bytes == sum(c.nbytes for c in history.entries)
    history.goto(solver, 1)
    history.step(solver, 1)  # drops the states after the cursor
    assert history.memory_bytes == sum(c.nbytes for c in history.entries)
    history.keep_only_checkpoints()
    assert all(m.checkpoint is not None for m in history.marks)
    assert history.memory_bytes == sum(c.nbytes for c in history.entries)


def test_record_iteration_spaces_checkpoints_by_their_cost(tmp_path):
    solver = make_solver(tmp_path)
    history = History()
    history.record_iteration(solver, 0.0)  # nothing measured yet: a full checkpoint
    assert history.checkpoint_every == 1 and history.marks[-1].checkpoint is not None
    history._capture_seconds = 0.003  # as if a checkpoint took 3 ms ...
    for _ in range(6):
        solver.step(1)
        history.record_iteration(solver, 0.010)  # ... and an iteration 10 ms: k = 3 ms / (3% · 10 ms) = 10
    assert history.checkpoint_every == 10
    assert [m.checkpoint is not None for m in history.marks] == [True] + [False] * 6
    history.record_iteration(solver, 0.010, every_iteration=True)
    assert history.checkpoint_every == 1 and history.marks[-1].checkpoint is not None
