"""Data: Caffe's database data layer. ``Datum`` records of an LMDB or LevelDB
database (``data_param { source backend batch_size rand_skip prefetch }``),
read in key order and wrapping around at the end, through the
:class:`~engine.transformer.DataTransformer` (``transform_param``).

Tops: ``data`` (N x C x H x W) and optionally ``label`` (N). Records may be
raw bytes, ``float_data`` or encoded PNG/JPEG (decoded in BGR order, as
Caffe/OpenCV store colour). Every record must have the shape of the first.

``rand_skip`` is accepted and ignored, with a warning, as Caffe 1.0 ignores it:
its Data layer (src/caffe/layers/data_layer.cpp) reads from the first record,
and the DataReader of rc3 to rc5 did not skip either; only the Data layer of rc2
and before drew ``caffe_rng_rand() % rand_skip``. So a net with ``rand_skip`` set
reads the records Caffe 1.0 reads. (ImageData's ``rand_skip`` is Caffe's own and
is kept: engine/layers/image_data.py.)

Prefetching: as Caffe's BasePrefetchingDataLayer, batches are read and
transformed on a background thread (``data_param.prefetch`` batches ahead,
default 4; ``prefetch: 0`` reads in ``forward``). One thread reads in order and
the position and random stream a snapshot saves are those after the last
batch ``forward`` handed out, so the numbers never depend on the thread.
"""
from __future__ import annotations

import collections
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy

from .. import backend, datatools, rng
from ..errors import DataError, NetDefinitionError
from ..layer import Layer, register
from ..proto import caffe_pb2
from ..transformer import DataTransformer
from ..validate import warn_about

_DEPRECATED_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


def transform_param_of(layer_param, own_param) -> caffe_pb2.TransformationParameter:
    """``transform_param`` with the deprecated copies in ``own_param`` (data_param,
    image_data_param) moved in, as Caffe's net upgrade does."""
    merged = caffe_pb2.TransformationParameter()
    merged.CopyFrom(layer_param.transform_param)
    for name in _DEPRECATED_TRANSFORM_FIELDS:
        if own_param.HasField(name):
            setattr(merged, name, getattr(own_param, name))
    return merged


@dataclass
class Batch:
    """One loaded batch and where reading continues after it."""
    data: numpy.ndarray
    labels: numpy.ndarray
    position: object


class PrefetchingDataLayer(Layer):
    """A data layer whose batches are loaded (in order) on one background thread.

    Subclasses set ``self._position`` in ``layer_setup`` and implement
    ``_load(position) -> Batch`` (runs on the thread; it may use the layer's
    transformer, which only that thread touches while batches are pending),
    ``_state_of(position)`` and ``_position_from(state)``.
    """

    num_bottoms = 0
    min_tops = 1
    prefetch_depth = 4
    transformer: DataTransformer  # set by each subclass's layer_setup
    _executor: ThreadPoolExecutor | None = None

    def check_blob_counts(self, bottom, top):
        super().check_blob_counts(bottom, top)
        if len(top) > 2:
            raise NetDefinitionError(f"layer '{self.name}' ({self.type_name}) produces data and an optional "
                                     f"label: 1 or 2 top blobs, got {len(top)}")

    def _caffe_prefetch_setup_draws(self) -> None:
        """What Caffe's BasePrefetchingDataLayer::LayerSetUp takes from Caffe's stream after
        DataLayerSetUp: a second ``InitRand`` of the transformer, then one value for the
        prefetch thread (StartInternalThread). Taken so that the fillers of later layers
        draw what Caffe's draw; call before ``_start_reading``."""
        self.transformer.init_rand()
        rng.caffe_stream().rand()

    def _start_reading(self, position) -> None:
        self._pending: collections.deque[Future] = collections.deque()
        self._position = position  # after the last batch handed out (what a snapshot saves)
        self._tail = position      # after the last batch loaded (the thread's)

    def forward(self, bottom, top):
        batch = self._next_batch()
        top[0].data[...] = backend.to_device(batch.data, top[0].device)
        if len(top) > 1:
            top[1].data[...] = backend.to_device(batch.labels, top[1].device)
        self._position = batch.position

    def backward(self, top, propagate_down, bottom):
        pass

    def _load_next(self) -> Batch:
        batch = self._load(self._tail)
        self._tail = batch.position
        return batch

    def _next_batch(self) -> Batch:
        if self.prefetch_depth <= 0:
            return self._load_next()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"prefetch-{self.name}")
        while len(self._pending) < self.prefetch_depth:
            self._pending.append(self._executor.submit(self._load_next))
        batch = self._pending.popleft().result()
        self._pending.append(self._executor.submit(self._load_next))
        return batch

    def _drain(self) -> None:
        """Wait for the batches being loaded and drop them."""
        pending = getattr(self, "_pending", None)
        while pending:
            future = pending.popleft()
            try:
                future.result()
            except Exception:  # noqa: BLE001 - a dropped batch's error does not matter
                pass

    def state(self) -> dict:
        """Where the next batch starts (saved in snapshots)."""
        return self._state_of(self._position)

    def set_state(self, state: dict) -> None:
        """Continue from a :meth:`state` (drops the batches read ahead)."""
        position = self._position_from(state)
        self._drain()
        self._position = self._tail = position
        self._restore_position(position)

    def _restore_position(self, position) -> None:
        """Hook: bring the thread-owned helpers (random streams) to ``position``."""

    def _load(self, position) -> Batch:
        """One batch from ``position`` (runs on the prefetch thread)."""
        raise NotImplementedError

    def _state_of(self, position) -> dict:
        raise NotImplementedError

    def _position_from(self, state: dict):
        raise NotImplementedError

    def __del__(self):
        executor = self._executor
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class DbPosition:
    key: bytes          # the key of the next record
    offset: int         # records read since the first key (counting wrap-arounds)
    random: dict | None  # the transformer's random stream


@register("Data")
class DataLayer(PrefetchingDataLayer):

    def layer_setup(self, bottom, top):
        p = self.param.data_param
        where = f"layer '{self.name}' (Data)"
        if not p.source:
            raise NetDefinitionError(f"{where}: data_param.source is not set")
        self.batch_size = int(p.batch_size)
        if self.batch_size <= 0:
            raise NetDefinitionError(f"{where}: data_param.batch_size must be > 0")
        self.prefetch_depth = int(p.prefetch)
        self.source = p.source
        self.where = f"{where}, database '{p.source}'"
        self.reader = datatools.open_database(p.source, datatools.backend_name(p.backend), self.where)
        param = transform_param_of(self.param, p)
        if p.force_encoded_color and not param.force_gray:
            param.force_color = True
        self.transformer = DataTransformer(param, self.phase, where)
        first_key, first_value = self.reader.read(self.reader.first_key, 1)[0][0]
        record = self._record_where(first_key)
        self.record_shape = datatools.datum_pixels(
            datatools.parse_datum(first_value, record), record, self.transformer.decode_mode).shape
        self.transformer.check_input(self.record_shape)
        key, offset = self.reader.first_key, 0
        if p.rand_skip:
            warn_about(self.where, f"data_param.rand_skip {p.rand_skip} is ignored, as Caffe 1.0's Data layer "
                                   f"ignores it: reading starts at the first record")
        self._caffe_prefetch_setup_draws()
        self._start_reading(DbPosition(key, offset, self.transformer.random_state()))

    def _record_where(self, key: bytes) -> str:
        return f"{self.where}: record {key!r}"

    def reshape(self, bottom, top):
        top[0].reshape((self.batch_size,) + self.transformer.output_shape(*self.record_shape))
        if len(top) > 1:
            top[1].reshape((self.batch_size,))

    # -- loading (on the prefetch thread) ---------------------------------------
    def _load(self, position: DbPosition) -> Batch:
        records, next_key, _wraps = self.reader.read(position.key, self.batch_size)
        datums = self._parse(records)
        labels = numpy.fromiter((datum.label for datum in datums), numpy.float32, len(datums))
        pixels = self._raw_bytes_batch(datums)
        if pixels is None:
            pixels = self._decoded_batch(records)
        data = self.transformer.transform(pixels)
        return Batch(data, labels, DbPosition(next_key, position.offset + self.batch_size,
                                              self.transformer.random_state()))

    def _parse(self, records: list[tuple[bytes, bytes]]) -> list:
        parse = caffe_pb2.Datum.FromString
        try:
            return [parse(value) for _key, value in records]
        except Exception:  # find the record at fault, for the message
            return [datatools.parse_datum(value, self._record_where(key)) for key, value in records]

    def _raw_bytes_batch(self, datums: list) -> numpy.ndarray | None:
        """The batch as one uint8 array when every record holds raw bytes of the
        expected shape (the common case, without a per-record array); else None."""
        shape = self.record_shape
        size = shape[0] * shape[1] * shape[2]
        for datum in datums:
            if datum.encoded or (datum.channels, datum.height, datum.width) != shape or len(datum.data) != size:
                return None
        joined = b"".join([datum.data for datum in datums])
        return numpy.frombuffer(joined, numpy.uint8).reshape((len(datums),) + shape)

    def _decoded_batch(self, records: list[tuple[bytes, bytes]]) -> numpy.ndarray:
        """The batch record by record: float_data, encoded images, and the checks."""
        pixels = None
        mode = self.transformer.decode_mode
        for i, (key, value) in enumerate(records):
            record = self._record_where(key)
            datum = datatools.parse_datum(value, record)  # with the checks of a Datum's fields
            image = datatools.datum_pixels(datum, record, mode)
            if image.shape != self.record_shape:
                raise DataError(f"{record} has shape {image.shape} (C x H x W) but the first record has "
                                f"{self.record_shape}: every record of a Data layer must have one shape")
            if pixels is None or (image.dtype != pixels.dtype and pixels.dtype == numpy.uint8):
                pixels = self._batch_buffer(pixels, image.dtype, i)
            pixels[i] = image
        assert pixels is not None
        return pixels

    def _batch_buffer(self, old: numpy.ndarray | None, dtype, filled: int) -> numpy.ndarray:
        """A batch array for records of ``dtype`` (float32 once any record holds float_data)."""
        dtype = numpy.uint8 if dtype == numpy.uint8 and (old is None or old.dtype == numpy.uint8) \
            else numpy.float32
        buffer = numpy.empty((self.batch_size,) + self.record_shape, dtype)
        if old is not None:
            buffer[:filled] = old[:filled]
        return buffer

    # -- position, for snapshots ----------------------------------------------
    def _state_of(self, position: DbPosition) -> dict:
        state = {"key": numpy.frombuffer(position.key, numpy.uint8).copy(), "offset": position.offset}
        if position.random is not None:
            state["transform_rng"] = _json_bytes(position.random)
        return state

    def _position_from(self, state: dict) -> DbPosition:
        try:
            key = bytes(numpy.asarray(state["key"], dtype=numpy.uint8).reshape(-1))
            offset = int(state["offset"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{self.where}: the saved position is not a Data layer's "
                            f"(it has {', '.join(sorted(state))})") from None
        self.reader.read(key, 1)  # the key must still be there (DataError naming it otherwise)
        random = _json_value(state["transform_rng"]) if "transform_rng" in state else None
        return DbPosition(key, offset, self.transformer.checked_random_state(random))

    def _restore_position(self, position: DbPosition) -> None:
        self.transformer.set_random_state(position.random)


def _json_bytes(value) -> numpy.ndarray:
    import json
    return numpy.frombuffer(json.dumps(value).encode("utf-8"), numpy.uint8).copy()


def _json_value(array):
    import json
    return json.loads(bytes(numpy.asarray(array, dtype=numpy.uint8).reshape(-1)).decode("utf-8"))
