"""Rewind: step back restores the full state; stepping forward again reproduces it."""
import numpy
import pytest

from engine import rng
from gui.model.timeline import Timeline, capture, restore

from .debug_nets import SPIRAL, make_solver, spiral_solver, weights


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
    history = Timeline()
    history.step(solver, 6)
    before_rewind = _state(solver)
    for _ in range(5):
        history.step_back(solver)
    assert solver.iter == 1
    history.step(solver, 5)
    _assert_same_state(_state(solver), before_rewind)


def test_step_back_restores_the_earlier_state_exactly(tmp_path):
    solver = make_solver(tmp_path)
    history = Timeline()
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
    history = Timeline()
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
    history = Timeline()
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
    history = Timeline()
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
    history = Timeline(capacity=100, max_bytes=one * 5 + one // 2)
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
    history = Timeline()
    with pytest.raises(IndexError, match="nothing to step back"):
        history.step_back(solver)


def test_sparse_checkpoints_replay_to_the_same_numbers(tmp_path):
    dense_solver = make_solver(tmp_path)
    dense = Timeline()
    dense.step(dense_solver, 10)
    states = {}
    for position in (9, 7, 5, 2):
        dense.goto(dense_solver, position)
        states[position] = _state(dense_solver)
    solver = make_solver(tmp_path)
    sparse = Timeline(checkpoint_every=4)
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
    history = Timeline(capacity=6, checkpoint_every=4)
    history.step(solver, 13)
    assert history.marks[0].checkpoint is not None
    assert len(history) <= 6 + 3
    history.goto(solver, 0)
    assert solver.iter == history.marks[0].iteration


def test_memory_accounting_follows_drops_and_rewinds(tmp_path):
    solver = make_solver(tmp_path)
    history = Timeline(capacity=5, checkpoint_every=2)
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
    history = Timeline()
    history.duty = 0.03  # checkpoints may take 3 % of the training time
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



def test_slow_iterations_keep_the_replay_short(tmp_path):
    """k by the duty alone would be 25 (a 50 ms copy, 1 % of 200 ms iterations); the
    replay a goto needs is held to MAX_REPLAY_SECONDS (0.5 s: 2 iterations of 0.2 s)."""
    from gui.model.timeline import MAX_REPLAY_SECONDS
    solver = make_solver(tmp_path)
    history = Timeline()
    history.duty = 0.01
    history.record(solver)
    for _ in range(6):
        solver.step(1)
        history._capture_seconds = 0.050
        history.record_iteration(solver, 0.200)
    assert MAX_REPLAY_SECONDS == 0.5 and history.checkpoint_every == 2
    assert [m.checkpoint is not None for m in history.marks] == [True, False, True, False, True, False, True]


# -- replayed states are the live states, bit for bit -------------------------------
#: Digits (8x8 images, K_ = 64) like the digits_mlp example, but shuffled, with Dropout,
#: a small batch (the train cursor wraps within a few iterations) and a test net whose
#: batch is smaller than the test split (its cursor moves at every test).
DIGITS_NET = """
name: "digits_like"
layer { name: "data" type: "BuiltinData" top: "data" top: "label" include { phase: TRAIN }
  builtin_data_param { dataset: "digits" seed: 1 test_fraction: 0.2 batch_size: 100 num_classes: 10
                       shuffle: true } }
layer { name: "data" type: "BuiltinData" top: "data" top: "label" include { phase: TEST }
  builtin_data_param { dataset: "digits" seed: 1 test_fraction: 0.2 batch_size: 50 num_classes: 10 } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 16 weight_filler { type: "xavier" } bias_filler { type: "constant" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "drop1" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.2 } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""


def _digits_solver(tmp_path):
    from gui.model import frames
    solver = make_solver(tmp_path, DIGITS_NET, test_interval=4, test_iter=1, stepsize=9)
    frames.prepare_for_inspection(solver)  # as the app: raw gradients and captured diffs kept
    return solver


def _assert_identical(a, b, where="state"):
    """``a`` and ``b`` equal bit for bit, recursively (arrays: same dtype, shape and bytes)."""
    if isinstance(a, numpy.ndarray) or isinstance(b, numpy.ndarray):
        assert isinstance(a, numpy.ndarray) and isinstance(b, numpy.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:
        assert isinstance(b, float) and b != b, where  # NaN (the smoothed loss before any iteration)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _assert_same_checkpoint(found, expected):
    for name in ("iteration", "params", "param_diffs", "history", "raw_gradients", "activations", "captured",
                 "scalars", "data_cursors", "rng_state"):
        _assert_identical(getattr(found, name), getattr(expected, name), name)


def _record_live(solver, history, iterations, capture_seconds=None):
    """Step and record_iteration (as the app does: iterations of 10 ms), keeping a full
    capture of every state. ``capture_seconds``: as if each checkpoint took that long
    (the spacing k = capture_seconds / (duty · 10 ms) then stays put)."""
    live = [capture(solver)]
    history.record(solver, "loaded")
    for _ in range(iterations):
        solver.step(1)
        if capture_seconds is not None:
            history._capture_seconds = capture_seconds
        history.record_iteration(solver, 0.010)
        live.append(capture(solver))
    return live


def test_every_replayed_state_of_a_digits_net_is_the_live_state_bit_for_bit(tmp_path):
    solver = _digits_solver(tmp_path)
    history = Timeline()
    history.duty = 0.03
    live = _record_live(solver, history, 13, capture_seconds=0.0015)  # k = 1.5 ms / (3% · 10 ms) = 5
    assert history.checkpoint_every == 5
    assert [m.iteration for m in history.marks if m.checkpoint is not None] == [0, 5, 10]
    assert solver.test_scores and solver.net.layers[0].batcher.cursor != 0
    for position in (13, 0, 1, 2, 6, 5, 4, 3, 12, 7, 11, 10, 9, 8):  # backwards, forwards, across checkpoints
        history.goto(solver, position)
        assert history.position == position
        _assert_same_checkpoint(capture(solver), live[position])


def test_training_on_from_a_replayed_state_continues_the_live_run(tmp_path):
    solver = _digits_solver(tmp_path)
    history = Timeline(checkpoint_every=4)
    live = _record_live(solver, history, 10)
    history.goto(solver, 2)  # the first iterations: replayed from the initial checkpoint
    for expected in live[3:]:
        solver.step(1)
        history.record_iteration(solver, 0.010)
        _assert_same_checkpoint(capture(solver), expected)
    assert len(history) == len(live)
    history.goto(solver, 7)
    _assert_same_checkpoint(capture(solver), live[7])


def test_step_back_from_every_state_gives_the_live_state_before_it(tmp_path):
    solver = _digits_solver(tmp_path)
    history = Timeline(checkpoint_every=3)
    live = _record_live(solver, history, 8)
    for position in range(7, -1, -1):
        history.step_back(solver)
        _assert_same_checkpoint(capture(solver), live[position])
    assert not history.can_step_back()


def test_a_full_history_keeps_replaying_exactly_and_within_its_memory(tmp_path):
    twin = _digits_solver(tmp_path)
    twin.step(1)
    one = capture(twin).nbytes  # a checkpoint after an iteration (with raw gradients and captured diffs)
    solver = _digits_solver(tmp_path)
    history = Timeline(capacity=500, max_bytes=one * 3 + one // 2)  # room for three checkpoints
    history.duty = 0.03
    live = _record_live(solver, history, 30, capture_seconds=0.0012)  # k = 4: 3 checkpoints, 12 states
    assert history.checkpoint_every == 4
    assert history.effective_capacity() == 14
    assert history.memory_bytes <= history.max_bytes
    assert history.memory_bytes == sum(c.nbytes for c in history.entries)
    assert history.marks[0].checkpoint is not None  # the oldest kept state can be restored
    assert len(history) <= history.effective_capacity()
    checkpoints = [m.iteration for m in history.marks if m.checkpoint is not None]
    assert all(b - a == 4 for a, b in zip(checkpoints, checkpoints[1:]))  # the spacing survives trimming
    assert history.marks[-1].iteration == 30
    for position in range(len(history)):
        history.goto(solver, position)
        _assert_same_checkpoint(capture(solver), live[history.marks[position].iteration])


# -- the debugger's hook on the session ------------------------------------------
def test_the_debugger_records_the_steps_the_session_takes_until_unhooked(qtbot):
    import gui.debug
    from gui.main_window import MainWindow

    window = MainWindow(settings=None, modal_errors=False)
    qtbot.addWidget(window)
    try:
        assert window.open_path(str(SPIRAL))
        controller = gui.debug.install(window)
        session, history = window.session, controller.timeline
        assert len(history) == 1  # the loaded state
        session.step_iteration()  # as the worker steps: through the session's own methods
        while session.step_event().kind != "update":
            pass
        assert [m.iteration for m in history.marks] == [0, 1, 2]
        history.goto(session.solver, 1)  # ... and the recorded states restore
        assert session.solver.iter == 1
        session.step_iteration()
        assert [m.iteration for m in history.marks] == [0, 1, 2] and history.position == 2
        controller.unhook_session()
        session.step_iteration()
        while session.step_event().kind != "update":
            pass
        assert session.iteration == 4 and len(history) == 3
        controller.hook_session()
        controller.hook_session()  # once only
        session.step_iteration()
        assert [m.iteration for m in history.marks][-1] == 5 and len(history) == 4
    finally:
        window.debug.slow_motion.stop()
        window.shutdown()


def test_the_memory_bound_holds_when_checkpoints_become_sparser(tmp_path):
    """Checkpoints taken every iteration (decomposition shown), then every 4th: the
    older, denser ones are dropped to stay within max_bytes."""
    twin = _digits_solver(tmp_path)
    twin.step(1)
    one = capture(twin).nbytes
    solver = _digits_solver(tmp_path)
    history = Timeline(capacity=500, max_bytes=one * 4 + one // 2)
    history.duty = 0.03
    live = [capture(solver)]
    history.record(solver)
    for i in range(14):
        solver.step(1)
        if i >= 6:
            history._capture_seconds = 0.0012  # k = 4 from now on
        history.record_iteration(solver, 0.010, every_iteration=i < 6)
        live.append(capture(solver))
    assert history.checkpoint_every == 4
    assert history.memory_bytes <= history.max_bytes
    assert history.memory_bytes == sum(c.nbytes for c in history.entries)
    assert history.marks[0].checkpoint is not None and history.marks[-1].iteration == 14
    for position in range(len(history)):
        history.goto(solver, position)
        _assert_same_checkpoint(capture(solver), live[history.marks[position].iteration])


def test_changes_between_iterations_end_the_fast_path(tmp_path):
    """set_capacity, keep_only_checkpoints (a settings edit) and goto while recording
    with record_iteration: the history stays within its capacity, starts with a
    checkpoint, and every kept state still replays to the live one."""
    solver = _digits_solver(tmp_path)
    history = Timeline(capacity=40)
    history.duty = 0.03
    live = {c.iteration: c for c in _record_live(solver, history, 10, capture_seconds=0.0012)}  # k = 4
    history.set_capacity(6)
    assert len(history) <= 6 and history.marks[0].checkpoint is not None
    for _ in range(7):
        solver.step(1)
        history._capture_seconds = 0.0012
        history.record_iteration(solver, 0.010)
        live[solver.iter] = capture(solver)
        assert len(history) <= history.effective_capacity() == 6
        assert history.marks[0].checkpoint is not None and history.position == len(history) - 1
    history.keep_only_checkpoints()
    assert all(m.checkpoint is not None for m in history.marks) and len(history) >= 2
    first = history.marks[0].iteration
    history.goto(solver, 0)
    solver.step(1)
    history.record_iteration(solver, 0.010)
    _assert_same_checkpoint(capture(solver), live[first + 1])  # the same iteration as before
    for _ in range(2):
        solver.step(1)
        history.record_iteration(solver, 0.010)
        live[solver.iter] = capture(solver)
    assert [m.iteration for m in history.marks] == [first, first + 1, first + 2, first + 3]
    for position in range(len(history)):
        history.goto(solver, position)
        _assert_same_checkpoint(capture(solver), live[history.marks[position].iteration])


def test_a_smaller_capacity_applies_at_once_and_keeps_a_checkpoint_to_replay_from(tmp_path):
    solver = _digits_solver(tmp_path)
    history = Timeline(capacity=40)
    history.duty = 0.03
    live = _record_live(solver, history, 10, capture_seconds=0.006)  # k = 20: no checkpoint due soon
    assert history.checkpoint_every == 20
    history.set_capacity(12)
    for _ in range(20):
        solver.step(1)
        history._capture_seconds = 0.006
        history.record_iteration(solver, 0.010)
        live.append(capture(solver))
        assert len(history) <= 12 and history.marks[0].checkpoint is not None
    assert history.checkpoint_every == 6  # at most half the capacity
    for position in range(len(history)):
        history.goto(solver, position)
        _assert_same_checkpoint(capture(solver), live[history.marks[position].iteration])


def test_a_run_recorded_elsewhere_joins_the_timeline_and_replays_exactly(tmp_path):
    """RunRecorder (the solver process's) keeps the capacity's worth from a checkpoint on;
    appended to the window's Timeline, every state it names is reached bit for bit."""
    from gui.model.timeline import RunRecorder
    solver = make_solver(tmp_path)  # shuffled data + Dropout
    history = Timeline(capacity=40)
    history.step(solver, 3)
    settings = history.recorder_settings()
    settings["iteration_seconds"], settings["capture_seconds"] = 1e-3, 3e-3  # k = 5 to begin with
    settings["duty"] = 0.6  # (the measured captures then set k)
    recorder = RunRecorder(settings, capture(solver))
    live = {}
    for _ in range(100):
        solver.step(1)
        live[solver.iter] = weights(solver)
        if solver.iter >= recorder.next_due:
            recorder.checkpoint(solver, 1e-3 * (solver.iter - 3))
    recorded = recorder.recorded(solver.iter)
    marks = recorded["marks"]
    assert marks[0].checkpoint is not None and marks[-1].iteration == 103
    assert 40 <= len(marks) <= 40 + recorder.every
    assert [m.iteration for m in marks] == list(range(marks[0].iteration, 104))
    assert len(recorder.checkpoints) < 40 // recorder.every + 3  # old checkpoints went
    history.append_recorded(recorded)
    assert len(history) <= 40 and history.marks[0].checkpoint is not None
    assert history.marks[-1].iteration == 103 and history.position == len(history) - 1
    for position in range(len(history)):
        mark = history.goto(solver, position)
        for mine, theirs in zip(weights(solver), live[mark.iteration]):
            assert numpy.array_equal(mine, theirs)
