"""The training curves (Qt-free): loss, smoothed loss and learning rate per
iteration, and the test passes' scores.

Memory stays bounded however long a run goes: each series keeps at most
``2 * capacity`` points in memory (test passes: ``2 * test_capacity``), decimated evenly (when the buffer fills, every
other point goes and from then on only every 2nd, 4th, ... iteration is kept;
the newest point is always there). Full resolution goes to a CSV spool file on
disk when one is given (the app uses a temporary file), and ``to_csv`` exports
from it. ``truncate_after`` cuts every series back (Rewind; a lost run).
Thread-safe: the stepping thread appends while the GUI thread reads.
"""
from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
import threading
from typing import TextIO

import numpy

from engine.atomic import atomic_write

#: The training series, in CSV column order.
TRAIN_SERIES = ("loss", "smoothed_loss", "lr")
#: Points each training series keeps in memory (twice this at most between two decimations).
DEFAULT_CAPACITY = 4096
#: Test passes kept in memory (each is a dict, and drawn with a symbol: fewer).
DEFAULT_TEST_CAPACITY = 256


class _Decimated:
    """Evenly thinned (iteration, values...) rows, at most ``2 * capacity`` of them."""

    def __init__(self, columns: int, capacity: int):
        self.capacity = capacity
        self.rows = numpy.empty((2 * capacity, columns), dtype=numpy.float64)
        self.size = 0
        self.stride = 1
        self.seen = 0  # rows offered since the last clear
        self.latest: numpy.ndarray | None = None

    def add(self, row) -> None:
        self.latest = numpy.asarray(row, dtype=numpy.float64)
        if self.seen % self.stride == 0:
            if self.size == self.rows.shape[0]:
                kept = self.rows[0:self.size:2].copy()
                self.size = kept.shape[0]
                self.rows[:self.size] = kept
                self.stride *= 2
            if self.seen % self.stride == 0:
                self.rows[self.size] = self.latest
                self.size += 1
        self.seen += 1

    def data(self) -> numpy.ndarray:
        """The kept rows plus the newest one (a copy)."""
        rows = self.rows[:self.size]
        if self.latest is not None and (self.size == 0 or rows[-1, 0] != self.latest[0]):
            rows = numpy.vstack([rows, self.latest[None, :]])
        return rows.copy()

    def truncate_after(self, iteration: float) -> None:
        keep = int(numpy.searchsorted(self.rows[:self.size, 0], iteration, side="right"))
        self.size = keep
        self.latest = self.rows[keep - 1].copy() if keep else None

    def clear(self) -> None:
        self.size, self.stride, self.seen, self.latest = 0, 1, 0, None


class Metrics:
    """Loss / smoothed loss / lr per iteration and test scores; see the module doc."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, spool: bool | str = False,
                 test_capacity: int = DEFAULT_TEST_CAPACITY):
        self._lock = threading.RLock()
        self._train = _Decimated(1 + len(TRAIN_SERIES), capacity)
        self._tests: list[tuple[int, dict[str, float]]] = []
        self._test_stride = 1
        self._test_seen = 0
        self.capacity = capacity
        self.test_capacity = test_capacity
        self.count = 0  # training points appended (full resolution)
        self.test_count = 0
        self.last_iteration = -1
        #: bumps at every change (views redraw when it moved); ``generation`` at every cut
        self.revision = 0
        self.generation = 0
        self._spool_path: str | None = None
        self._spool: TextIO | None = None
        if spool:
            self._open_spool(spool if isinstance(spool, str) else None)

    # -- writing (stepping thread) ---------------------------------------------
    def append(self, iteration: int, loss: float, smoothed: float, lr: float) -> None:
        with self._lock:
            self._train.add((iteration, loss, smoothed, lr))
            self.count += 1
            self.last_iteration = iteration
            self.revision += 1
            if self._spool is not None:
                self._spool.write(f"{iteration},{_text(loss)},{_text(smoothed)},{_text(lr)}\n")

    def add_tests(self, points) -> None:
        """Append test passes, ``(iteration, {output: value})`` each."""
        with self._lock:
            for iteration, scores in points:
                if self._test_seen % self._test_stride == 0:
                    if len(self._tests) >= 2 * self.test_capacity:
                        self._tests = self._tests[::2]
                        self._test_stride *= 2
                    self._tests.append((int(iteration), dict(scores)))
                self._test_seen += 1
                self.test_count += 1
                if self._spool is not None:
                    cells = ";".join(f"{k}={_text(v)}" for k, v in scores.items())
                    self._spool.write(f"{int(iteration)},test,{cells}\n")
            self.revision += 1

    def truncate_after(self, iteration: int) -> None:
        """Forget every point after ``iteration`` (Rewind, a lost run)."""
        with self._lock:
            self._train.truncate_after(iteration)
            self._tests = [t for t in self._tests if t[0] <= iteration]
            self.last_iteration = min(self.last_iteration, iteration)
            self._cut_spool(iteration)
            self.count = sum(1 for _ in self._spooled_rows()) if self._spool is not None else self._train.size
            self.test_count = len(self._tests)
            self.revision += 1
            self.generation += 1

    def clear(self) -> None:
        with self._lock:
            self._train.clear()
            self._tests, self._test_stride, self._test_seen = [], 1, 0
            self.count = self.test_count = 0
            self.last_iteration = -1
            if self._spool is not None:
                self._spool.seek(0)
                self._spool.truncate()
            self.revision += 1
            self.generation += 1

    # -- reading (any thread) ------------------------------------------------------
    def train_arrays(self) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """(iterations, losses, smoothed, lrs) kept in memory (copies, bounded)."""
        with self._lock:
            rows = self._train.data()
        return rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]

    @property
    def tests(self) -> list[tuple[int, dict[str, float]]]:
        with self._lock:
            return list(self._tests)

    @property
    def iterations(self) -> list[int]:
        return [int(i) for i in self.train_arrays()[0]]

    @property
    def losses(self) -> list[float]:
        return self.train_arrays()[1].tolist()

    @property
    def smoothed(self) -> list[float]:
        return self.train_arrays()[2].tolist()

    @property
    def lrs(self) -> list[float]:
        return self.train_arrays()[3].tolist()

    def __len__(self) -> int:
        return self.count

    def loss_at(self, iteration: int) -> float:
        """The loss recorded for ``iteration`` (NaN when it is not kept)."""
        iterations, losses, _, _ = self.train_arrays()
        hits = numpy.nonzero(iterations == iteration)[0]
        return float(losses[hits[-1]]) if hits.size else float("nan")

    def nbytes(self) -> int:
        return self._train.rows.nbytes

    # -- the full-resolution file ----------------------------------------------------
    @property
    def spool_path(self) -> str | None:
        return self._spool_path

    def start_spool(self, path: str | None = None) -> None:
        """Keep full resolution from now on in ``path`` (a temporary file when None)."""
        with self._lock:
            if self._spool is None:
                self._open_spool(path)

    def _open_spool(self, path: str | None) -> None:
        if path is None:
            handle, path = tempfile.mkstemp(prefix="backprop-studio-metrics-", suffix=".txt")
            os.close(handle)
        self._spool_path = path
        self._spool = open(path, "w+", encoding="utf-8")

    def close(self) -> None:
        """Close and delete the spool file (the window does when it closes); the
        metrics go on in memory only."""
        with self._lock:
            if self._spool is not None:
                self._spool.close()
                self._spool = None
                if self._spool_path and os.path.exists(self._spool_path):
                    os.unlink(self._spool_path)

    def _spooled_rows(self):
        assert self._spool is not None and self._spool_path is not None
        self._spool.flush()
        with open(self._spool_path, encoding="utf-8") as source:
            for line in source:
                if ",test," not in line:
                    yield line

    def _cut_spool(self, iteration: int) -> None:
        if self._spool is None or self._spool_path is None:
            return
        self._spool.flush()
        kept = self._spool_path + ".cut"
        with open(self._spool_path, encoding="utf-8") as source, open(kept, "w", encoding="utf-8") as out:
            for line in source:
                if int(line.split(",", 1)[0]) <= iteration:
                    out.write(line)
        self._spool.close()
        shutil.move(kept, self._spool_path)
        self._spool = open(self._spool_path, "a+", encoding="utf-8")

    def _all_rows(self) -> tuple[list[tuple], list[tuple[int, dict[str, float]]]]:
        """Every training row and test pass: from the spool when there is one."""
        if self._spool is None or self._spool_path is None:
            iterations, losses, smoothed, lrs = self.train_arrays()
            return list(zip(iterations.astype(int).tolist(), losses, smoothed, lrs)), self.tests
        train: list[tuple] = []
        tests: list[tuple[int, dict[str, float]]] = []
        self._spool.flush()
        with open(self._spool_path, encoding="utf-8") as source:
            for line in source:
                fields = line.rstrip("\n").split(",")
                if len(fields) >= 2 and fields[1] == "test":
                    cells = ",".join(fields[2:]).split(";") if len(fields) > 2 else []
                    tests.append((int(fields[0]), {k: float(v) for k, v in
                                                   (c.split("=", 1) for c in cells if "=" in c)}))
                else:
                    train.append((int(fields[0]), *map(float, fields[1:4])))
        return train, tests

    def to_csv(self, path: str) -> None:
        """One row per iteration: iteration, loss, smoothed_loss, lr, test_<output>...
        (full resolution when spooled; written atomically)."""
        with self._lock:
            train, tests = self._all_rows()
        keys: list[str] = []
        for _, scores in tests:
            keys += [k for k in scores if k not in keys]
        names = list(TRAIN_SERIES) + [f"test_{k}" for k in keys]
        rows: dict[int, dict[str, float]] = {}
        for iteration, loss, smoothed, lr in train:
            rows.setdefault(iteration, {}).update(loss=loss, smoothed_loss=smoothed, lr=lr)
        for iteration, scores in tests:
            rows.setdefault(iteration, {}).update({f"test_{k}": v for k, v in scores.items()})
        with atomic_write(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["iteration"] + names)
            for iteration in sorted(rows):
                writer.writerow([iteration] + [_csv_value(rows[iteration].get(n)) for n in names])


def _text(value: float) -> str:
    return repr(float(value))


def _csv_value(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    return repr(float(value))
