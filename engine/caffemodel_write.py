"""Caffe's binary messages that carry big parameter blobs (NetParameter with
weights, SolverState with history), encoded straight from the arrays.

protobuf's Python API takes a repeated float field one Python float at a time
(``array.tolist()`` then ``extend``), which costs about 15 s per GB. Here the
packed float fields are the arrays' own little-endian bytes behind a tag and a
length, and everything else (shapes, the layer's settings) is encoded by
protobuf itself. The fields come in field-number order, as protobuf writes
them, so the bytes are the same as ``message.SerializeToString()`` of the
same message built field by field (``tests/engine/test_caffemodel_write.py``).
The reader of these files is :mod:`engine.caffemodel_scan`.
"""
from __future__ import annotations

from typing import Iterator

import numpy

from . import backend
from .proto import caffe_pb2

#: BlobProto's fields (caffe.proto)
_DATA, _DIFF, _SHAPE, _DOUBLE_DATA, _DOUBLE_DIFF = 5, 6, 7, 8, 9
#: LayerParameter.blobs, NetParameter.layer, SolverState.history
_LAYER_BLOBS, _NET_LAYER, _STATE_HISTORY = 7, 100, 3

Chunks = Iterator[bytes | memoryview]


def encode_varint(value: int) -> bytes:
    """An unsigned protobuf varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def field_header(number: int, size: int) -> bytes:
    """The tag and length of a length-delimited field of ``size`` bytes."""
    return encode_varint(number << 3 | 2) + encode_varint(size)


def _packed(number: int, array: numpy.ndarray, dtype: str) -> list[bytes | memoryview]:
    """A packed repeated float/double field holding ``array`` (nothing when it is empty)."""
    flat = numpy.ascontiguousarray(array, dtype=dtype).reshape(-1)
    if not flat.size:
        return []
    return [field_header(number, flat.nbytes), flat.view(numpy.uint8).data]


def blob_chunks(array, diff=None) -> list[bytes | memoryview]:
    """A BlobProto as Caffe's Blob::ToProto writes it: float32 blobs in ``data``/``diff``,
    float64 ones in ``double_data``/``double_diff``, and the shape."""
    host = backend.to_numpy(array)
    host_diff = backend.to_numpy(diff) if diff is not None else None
    shape = caffe_pb2.BlobShape(dim=[int(d) for d in host.shape]).SerializeToString()
    shape_field = [field_header(_SHAPE, len(shape)), shape]
    if host.dtype == numpy.float64:
        diff_field = _packed(_DOUBLE_DIFF, host_diff, "<f8") if host_diff is not None else []
        return shape_field + _packed(_DOUBLE_DATA, host, "<f8") + diff_field
    diff_field = _packed(_DIFF, host_diff, "<f4") if host_diff is not None else []
    return _packed(_DATA, host, "<f4") + diff_field + shape_field


def _size(chunks: list[bytes | memoryview]) -> int:
    return sum(len(chunk) for chunk in chunks)


def _split_at(message, number: int) -> tuple[bytes, bytes]:
    """``message`` serialized in two parts: its fields numbered below ``number``, and
    those above (the field ``number`` itself is left out)."""
    low, high = type(message)(), type(message)()
    low.CopyFrom(message)
    high.CopyFrom(message)
    for field, _ in message.ListFields():
        (high if field.number < number else low).ClearField(field.name)
    low.ClearField(message.DESCRIPTOR.fields_by_number[number].name)
    low.DiscardUnknownFields()  # protobuf writes them last: they stay in the second part
    high.ClearField(message.DESCRIPTOR.fields_by_number[number].name)
    return low.SerializeToString(), high.SerializeToString()


def layer_chunks(layer_param, blobs: list[list[bytes | memoryview]]) -> list[bytes | memoryview]:
    """A LayerParameter: its settings with ``blobs`` (each from :func:`blob_chunks`) in place."""
    before, after = _split_at(layer_param, _LAYER_BLOBS)
    chunks: list[bytes | memoryview] = [before]
    for blob in blobs:
        chunks.append(field_header(_LAYER_BLOBS, _size(blob)))
        chunks.extend(blob)
    chunks.append(after)
    return chunks


def net_chunks(net, write_diff: bool = False) -> Chunks:
    """Caffe's Net::ToProto serialized: the name, then each layer with its blobs."""
    yield caffe_pb2.NetParameter(name=net.name).SerializeToString()
    for layer, layer_param in zip(net.layers, net.layer_params):
        blobs = [blob_chunks(blob.data, blob.diff if write_diff else None) for blob in layer.blobs]
        chunks = layer_chunks(layer_param, blobs)
        yield field_header(_NET_LAYER, _size(chunks))
        yield from chunks


def solver_state_chunks(iteration: int, learned_net: str, current_step: int, history) -> Chunks:
    """A SolverState serialized: iter, learned_net, each history blob, current_step."""
    yield caffe_pb2.SolverState(iter=iteration, learned_net=learned_net).SerializeToString()
    for array in history:
        blob = blob_chunks(array)
        yield field_header(_STATE_HISTORY, _size(blob))
        yield from blob
    yield caffe_pb2.SolverState(current_step=current_step).SerializeToString()
