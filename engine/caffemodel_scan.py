"""Reading a binary .caffemodel without copying its values.

Parsing a 233 MB NetParameter with protobuf holds the file's bytes, the parsed
message and then each blob's values converted to an array: three copies. This
scan walks the protobuf wire format itself and hands out each blob's values as
a numpy view into the file's bytes (packed little-endian floats or doubles are
exactly that), with the blob's small fields (shape, num/channels/height/width)
parsed by protobuf. The file is mapped (:func:`map_file`), not read: the values
are views into the page cache, and loading copies each value once, into its blob.

It reads the layers of today's ``layer`` field (name 1, blobs 7), of V1
``layers`` (name 4, blobs 6) and of V0 layers inside them (``layers { layer {
name 1, blobs 50 } }``). Anything it does not expect (unpacked or split value
fields, group wire types, a truncated field) makes :func:`scan_layers` return
None, and the caller parses the file with protobuf, which reports the problem.
"""
from __future__ import annotations

import mmap
import sys
from dataclasses import dataclass

import numpy
from google.protobuf.message import DecodeError

from .proto import caffe_pb2

_NET_LAYER, _NET_V1_LAYERS = 100, 2
_LAYER_NAME, _LAYER_BLOBS = 1, 7
_V1_NAME, _V1_BLOBS, _V1_V0_LAYER = 4, 6, 1
_V0_NAME, _V0_BLOBS = 1, 50
_BLOB_DATA, _BLOB_DOUBLE_DATA = 5, 8
_BLOB_HEADER_FIELDS = (1, 2, 3, 4, 7)  # num, channels, height, width, shape
_LITTLE_ENDIAN = sys.byteorder == "little"


class _Unexpected(Exception):
    """The file uses an encoding the scan leaves to protobuf."""


@dataclass
class ScannedBlob:
    """One BlobProto: ``header`` (a BlobProto with its shape fields only) and its
    values as a view into the file's bytes (None when it stores none)."""

    header: caffe_pb2.BlobProto
    values: numpy.ndarray | None


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= end or shift > 63:
            raise _Unexpected("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, wire type, payload start, payload end, field start) of the
    message in buf[start:end]."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, after = _varint(buf, pos, end)
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            after = pos + size
        elif wire == 1:
            after = pos + 8
        elif wire == 5:
            after = pos + 4
        else:
            raise _Unexpected(f"wire type {wire}")
        if after > end:
            raise _Unexpected("truncated field")
        yield number, wire, pos, after, field_start
        pos = after


def _blob(raw, view: memoryview, start: int, end: int) -> ScannedBlob:
    header_parts: list[bytes] = []
    values = None
    for number, wire, first, after, field_start in _fields(view, start, end):
        if number in (_BLOB_DATA, _BLOB_DOUBLE_DATA):
            if wire != 2 or values is not None:
                raise _Unexpected("unpacked or split values")  # protobuf merges those
            dtype = numpy.dtype("<f4" if number == _BLOB_DATA else "<f8")
            if (after - first) % dtype.itemsize:
                raise _Unexpected("partial value")
            values = numpy.frombuffer(raw, dtype=dtype, count=(after - first) // dtype.itemsize, offset=first)
        elif number in _BLOB_HEADER_FIELDS:
            header_parts.append(bytes(view[field_start:after]))
    header = caffe_pb2.BlobProto.FromString(b"".join(header_parts))
    if values is not None and not _LITTLE_ENDIAN:
        values = values.astype(values.dtype.newbyteorder("="))
    return ScannedBlob(header, values)


def _layer(raw, view: memoryview, start: int, end: int, name_field: int, blobs_field: int):
    name, blobs, nested = "", [], None
    for number, wire, first, after, _ in _fields(view, start, end):
        if wire != 2:
            continue
        if number == name_field:
            name = bytes(view[first:after]).decode("utf-8")
        elif number == blobs_field:
            blobs.append(_blob(raw, view, first, after))
        elif name_field == _V1_NAME and number == _V1_V0_LAYER:
            nested = _layer(raw, view, first, after, _V0_NAME, _V0_BLOBS)
    if nested is not None:  # a V0 layer: its name and blobs, as Caffe's upgrade keeps them
        return nested[0] or name, nested[1] or blobs
    return name, blobs


def map_file(path: str):
    """The file mapped read-only (the values are then views into the page cache: no
    copy at all), or None where it cannot be mapped (an empty file, say)."""
    try:
        with open(path, "rb") as handle:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None


def scan_layers(raw) -> list[tuple[str, list[ScannedBlob]]] | None:
    """(layer name, [ScannedBlob]) of every layer of a binary NetParameter (bytes or
    a mapped file), today's ``layer`` first, then V1 / V0 ``layers``; None when
    protobuf must parse it."""
    view = memoryview(raw)
    layers, old = [], []
    try:
        for number, wire, first, after, _ in _fields(view, 0, len(raw)):
            if number == _NET_LAYER and wire == 2:
                layers.append(_layer(raw, view, first, after, _LAYER_NAME, _LAYER_BLOBS))
            elif number == _NET_V1_LAYERS and wire == 2:
                old.append(_layer(raw, view, first, after, _V1_NAME, _V1_BLOBS))
    except (_Unexpected, UnicodeDecodeError, ValueError, DecodeError):
        return None
    return layers + old
