"""The learnable parameters of a solver laid out side by side in one buffer per
array kind (data, diff, each history), so that the update's elementwise stages
run once per group of params instead of once per param.

A group is a run of params with the same ``lr_mult`` and ``decay_mult`` (the
only per-param inputs of the update rules), so each stage is one numpy/cupy
call over the group, or rather over each cache-sized chunk of it: all stages
of a chunk run while it is in cache, so the memory-bound update reads and
writes each weight array about once instead of once per stage. Every stage is elementwise, so the values are exactly
those of the per-param update, bit for bit. Blobs and ``solver.history`` keep
their arrays: they become views into the buffers, and :meth:`FlatParams.matches`
notices when anything replaced one (a device move, a reshape, a new history
list), after which the solver lays the buffers out anew.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import backend

CHUNK = 65536  # elements per chunk: data, diff, history and scratch slices fit in L2


@dataclass
class Chunk:
    """A cache-sized slice of a group: data, diff, histories and scratch buffers."""
    data: object
    diff: object
    histories: list
    scratches: list

    def scratch(self, which: int = 0):
        return self.scratches[which]


@dataclass
class ParamGroup:
    """Params [start, stop) of the buffers sharing one lr_mult and decay_mult."""
    lr_mult: float
    decay_mult: float
    data: object
    diff: object
    histories: list
    start: int
    stop: int
    chunks: list


class FlatParams:
    """Contiguous data/diff/history buffers whose slices are the params' arrays."""

    def __init__(self, params, histories: list, histories_per_param: int, lr_mults, decay_mults):
        n = len(params)
        xp = backend.get_array_module(params[0].data)
        dtype = params[0].dtype
        members: dict[tuple[float, float], list[int]] = {}
        for i in range(n):
            members.setdefault((lr_mults[i], decay_mults[i]), []).append(i)
        offsets, total = {}, 0
        for indices in members.values():
            for i in indices:
                offsets[i] = total
                total += params[i].data.size
        self.data = xp.empty(total, dtype=dtype)
        self.diff = xp.empty(total, dtype=dtype)
        self.histories = [xp.empty(total, dtype=dtype) for _ in range(histories_per_param)]
        scratch = [xp.empty(min(CHUNK, total), dtype=dtype) for _ in range(2)]
        self.params = list(params)
        self.solver_class = None  # the solver class this layout was checked for
        self.data_views, self.diff_views = [], []
        for i, blob in enumerate(params):
            start, shape = offsets[i], blob.shape
            stop = start + blob.data.size
            data_view = self.data[start:stop].reshape(shape)
            diff_view = self.diff[start:stop].reshape(shape)
            data_view[...] = blob.data
            diff_view[...] = blob.diff
            blob.adopt_arrays(data_view, diff_view)
            self.data_views.append(data_view)
            self.diff_views.append(diff_view)
            for k in range(histories_per_param):
                view = self.histories[k][start:stop].reshape(shape)
                view[...] = histories[i + k * n]
                histories[i + k * n] = view
        self.history_list = histories
        self.history_views = list(histories)
        self.lr_mults, self.decay_mults = list(lr_mults), list(decay_mults)
        self.groups = []
        for (lr_mult, decay_mult), indices in members.items():
            start = offsets[indices[0]]
            stop = offsets[indices[-1]] + params[indices[-1]].data.size
            chunks = [Chunk(self.data[a:b], self.diff[a:b], [h[a:b] for h in self.histories],
                            [buf[:b - a] for buf in scratch])
                      for a, b in ((a, min(a + CHUNK, stop)) for a in range(start, stop, CHUNK))]
            self.groups.append(ParamGroup(lr_mult, decay_mult, self.data[start:stop], self.diff[start:stop],
                                          [h[start:stop] for h in self.histories], start, stop, chunks))

    @staticmethod
    def possible(params) -> bool:
        """Whether the params can share buffers (same dtype and device, at least one)."""
        if not params:
            return False
        first = params[0]
        return all(b.dtype == first.dtype and type(b.data) is type(first.data) for b in params)

    def matches(self, params, histories: list, lr_mults, decay_mults) -> bool:
        """Whether every param and history array is still the view this layout made."""
        if histories is not self.history_list or len(params) != len(self.params):
            return False
        for blob, mine, data, diff in zip(params, self.params, self.data_views, self.diff_views):
            if blob is not mine or blob.data is not data or blob.diff is not diff:
                return False
        if len(histories) != len(self.history_views):
            return False
        for array, view in zip(histories, self.history_views):
            if array is not view:
                return False
        return lr_mults == self.lr_mults and decay_mults == self.decay_mults

    def clear_diffs(self) -> None:
        """Caffe's ClearParamDiffs, lazily (see Blob.clear_diff): a diff that backward
        overwrites whole (InnerProduct's GEMMs) is never zero-filled."""
        for blob in self.params:
            blob.clear_diff()

    def materialize_diffs(self) -> None:
        """Write the zeros of lazily cleared diffs no layer wrote, before the
        stages that work on the buffers directly."""
        for blob in self.params:
            if blob._diff_stale:
                blob.diff  # noqa: B018  (the read writes the zeros)

    def mark_diffs_written(self) -> None:
        for blob in self.params:
            blob.diff_is_clear = False
