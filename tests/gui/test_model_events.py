"""The model's typed events and bounded metrics, without a window."""
from __future__ import annotations

import csv

import numpy
import pytest

from engine import resources
from gui.model.events import EventEmitter, NetLoaded, RunFinished, RunStarted, SettingChanged, StateChanged, Stopped
from gui.model.metrics import Metrics
from gui.model.session import Session


def test_the_emitter_calls_each_callback_for_the_types_it_asked_for():
    emitter, loaded, everything = EventEmitter(), [], []
    emitter.connect(loaded.append, NetLoaded)
    emitter.connect(everything.append)
    emitter.connect(everything.append)  # connecting twice calls once
    emitter.emit(NetLoaded(None, "x"))
    emitter.emit(StateChanged("rewound", 3))
    assert [type(e) for e in loaded] == [NetLoaded]
    assert [type(e) for e in everything] == [NetLoaded, StateChanged]
    emitter.disconnect(everything.append)
    emitter.emit(Stopped("nonfinite", "m"))
    assert len(everything) == 2


def test_the_session_says_what_changed():
    session, seen = Session(), []
    session.emitter.connect(seen.append)
    session.load(resources.examples()["xor"])
    session.step_iteration()
    session.edit("base_lr", 0.5)
    session.changed("rewound", rewound=True)
    session.reset()
    kinds = [(type(e).__name__, getattr(e, "reason", None)) for e in seen]
    assert kinds == [("NetLoaded", "opened"), ("SettingChanged", None), ("StateChanged", "rewound"),
                     ("NetLoaded", "reset")]
    assert seen[1] == SettingChanged("base_lr", 0.5)


def test_a_rewind_cuts_the_curves_back_and_shows_the_loss_recorded_there():
    session = Session()
    session.load(resources.examples()["xor"])
    losses = [session.step_iteration() for _ in range(6)]
    session.solver.iter = 3  # as the timeline leaves it after restoring iteration 3
    session.changed("rewound", rewound=True)
    assert session.metrics.iterations == [1, 2, 3]
    assert session.last_loss == losses[2]


def test_metrics_stay_bounded_and_evenly_thinned():
    metrics = Metrics(capacity=100)
    for i in range(1, 100_001):
        metrics.append(i, 1.0 / i, 1.0 / i, 0.1)
    iterations = metrics.train_arrays()[0]
    assert len(metrics) == 100_000 and iterations.size <= 201
    assert iterations[0] == 1 and iterations[-1] == 100_000  # the newest point is always there
    steps = numpy.diff(iterations[:-1])
    assert steps.min() == steps.max()  # evenly spaced
    metrics.truncate_after(50_000)
    assert metrics.train_arrays()[0][-1] <= 50_000


def test_the_spooled_csv_has_every_iteration(tmp_path):
    metrics = Metrics(capacity=16)
    metrics.start_spool(str(tmp_path / "spool.txt"))
    for i in range(1, 1001):
        metrics.append(i, float(i), float(i), 0.01)
        if i % 100 == 0:
            metrics.add_tests([(i, {"accuracy": i / 1000})])
    metrics.truncate_after(900)  # a rewind: the rows after it go from the file too
    out = tmp_path / "curves.csv"
    metrics.to_csv(str(out))
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["iteration", "loss", "smoothed_loss", "lr", "test_accuracy"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 901))
    assert float(rows[900][4]) == pytest.approx(0.9) and rows[899][4] == ""
    metrics.close()
    assert not (tmp_path / "spool.txt").exists()


def test_runs_announce_themselves(qtbot):
    from gui.worker import start_worker, stop_worker
    session = Session()
    session.load(resources.examples()["xor"])
    seen = []
    session.emitter.connect(seen.append, RunStarted, RunFinished)
    worker, thread = start_worker(session)
    try:
        worker.request_run(7)
        qtbot.waitUntil(lambda: not worker.busy, timeout=20000)
    finally:
        stop_worker(worker, thread)
    assert seen == [RunStarted(7), RunFinished(7)]
