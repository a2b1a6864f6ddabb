"""Caffe's files: trained weights (.caffemodel, .caffemodel.h5) and solver
snapshots (.solverstate, .solverstate.h5), in Caffe's own layouts.

Weights
    ``.caffemodel``: a binary NetParameter whose layers carry their parameter
    blobs (BlobProto: ``shape`` + ``data``, or ``double_data`` for float64
    nets); old V1 files (``layers`` instead of ``layer``) are read too.
    ``.caffemodel.h5``: group ``data/<layer name>/<i>`` holds the i-th
    parameter blob (only the owner of a shared parameter stores it).
    Loading is by layer name, as Caffe's CopyTrainedLayersFrom: layers of the
    file that the net lacks are ignored, layers of the net that the file lacks
    keep their values; both lists come back in a :class:`WeightsReport`.

Solver state
    ``.solverstate``: a binary SolverState (``iter``, ``learned_net``,
    ``history``, ``current_step``). ``.solverstate.h5``: datasets ``iter``,
    ``learned_net``, ``current_step`` and group ``history/<i>`` (AdaDelta and
    Adam: all first histories, then all second ones).

    For a bit-exact resume the engine also stores what Caffe does not: the
    random stream, each data layer's position (file, row, shuffle order) and
    the smoothed-loss window. They live in an HDF5 group ``backprop_studio``:
    in the .h5 state directly; in the binary state as the bytes of a small
    in-memory HDF5 file in SolverState field number 10000, which Caffe's
    protobuf reader skips as an unknown field. Standard fields are never
    changed, so Caffe reads our files; files from Caffe (without the group)
    restore as Caffe restores them (data layers restart at row 0).

Every file is written atomically (see :mod:`engine.atomic`).
"""
from __future__ import annotations

import io as _stdio
import json
import os
import warnings
from dataclasses import dataclass, field

import numpy
from google.protobuf.message import DecodeError

from . import backend, rng
from .atomic import atomic_path, write_chunks
from .caffe_rng import checked_glibc_state
from .caffe_rng import checked_state as checked_caffe_state
from .caffemodel_write import field_header, net_chunks, solver_state_chunks
from .errors import DataError, EngineWarning, NetDefinitionError, ShapeError
from .proto import caffe_pb2
from .validate import check_input_file, format_bytes, require_memory

EXTRA_GROUP = "backprop_studio"
EXTRA_FIELD_NUMBER = 10000
EXTRA_VERSION = 1


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------
def _h5py():
    import h5py  # imported here: only file work pays for it
    return h5py


def is_hdf5_name(path: str) -> bool:
    """True for names Caffe treats as HDF5 (``.h5``; ``.hdf5`` accepted too)."""
    return path.endswith(".h5") or path.endswith(".hdf5")


def _read_bytes(path: str, what: str) -> bytes:
    size = check_input_file(path, what)  # a regular file of at most 2 GB (protobuf's limit)
    require_memory(3 * size, f"reading {what} '{path}' ({format_bytes(size)}: the bytes and the parsed values)")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise DataError(f"{what} '{path}' does not exist") from None
    except OSError as exc:
        raise DataError(f"{what} '{path}' cannot be read: {exc.strerror}") from None


def _open_h5(path: str, what: str):
    h5py = _h5py()
    check_input_file(path, what)
    try:
        return h5py.File(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        reason = str(exc).split("(")[0].strip() or "unreadable"
        raise DataError(f"{what} '{path}' is corrupt, truncated or not HDF5 ({reason})") from None


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def _owned_blobs(net):
    """(layer, j, blob, owner) for every parameter blob; owner is False for the
    second and later users of a shared parameter."""
    seen: set[int] = set()
    for layer in net.layers:
        for j, blob in enumerate(layer.blobs):
            yield layer, j, blob, id(blob) not in seen
            seen.add(id(blob))


# ---------------------------------------------------------------------------
# BlobProto <-> arrays
# ---------------------------------------------------------------------------
def blob_to_proto(proto: caffe_pb2.BlobProto, array, diff=None) -> caffe_pb2.BlobProto:
    """Fill ``proto`` as Caffe's Blob::ToProto does (float -> data, double -> double_data)."""
    array = backend.to_numpy(array)
    proto.Clear()
    proto.shape.dim.extend(int(d) for d in array.shape)
    flat = array.reshape(-1)
    if array.dtype == numpy.float64:
        proto.double_data.extend(flat.tolist())
        if diff is not None:
            proto.double_diff.extend(backend.to_numpy(diff).reshape(-1).tolist())
    else:
        proto.data.extend(flat.astype(numpy.float32).tolist())
        if diff is not None:
            proto.diff.extend(backend.to_numpy(diff).reshape(-1).astype(numpy.float32).tolist())
    return proto


def proto_shape(proto: caffe_pb2.BlobProto) -> tuple[int, ...] | None:
    """The blob's shape, or None for the legacy num/channels/height/width form."""
    if proto.HasField("shape"):
        return tuple(int(d) for d in proto.shape.dim)
    if any(proto.HasField(f) for f in ("num", "channels", "height", "width")):
        return None
    return ()  # as Caffe: no shape at all is a 0-axis (one-value) blob


def _legacy_shape(proto: caffe_pb2.BlobProto) -> tuple[int, int, int, int]:
    return (proto.num, proto.channels, proto.height, proto.width)


def shape_matches(proto: caffe_pb2.BlobProto, shape: tuple[int, ...]) -> bool:
    """Caffe's Blob::ShapeEquals: legacy 4-D shapes compare with leading 1s."""
    found = proto_shape(proto)
    if found is not None:
        return found == tuple(shape)
    if len(shape) > 4:
        return False
    padded = (1,) * (4 - len(shape)) + tuple(shape)
    return padded == _legacy_shape(proto)


def proto_values(proto: caffe_pb2.BlobProto, count: int, where: str) -> numpy.ndarray:
    """The blob's values as a flat array; DataError when the count is wrong."""
    if len(proto.double_data):
        values = numpy.array(proto.double_data, dtype=numpy.float64)
    else:
        values = numpy.array(proto.data, dtype=numpy.float32)
    if values.size != count:
        raise DataError(f"{where} holds {values.size} values but its shape needs {count} "
                        f"(the file is corrupt or truncated)")
    return values


def _describe_proto_shape(proto: caffe_pb2.BlobProto) -> str:
    shape = proto_shape(proto)
    return _shape_text(shape if shape is not None else _legacy_shape(proto))


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------
@dataclass
class WeightsReport:
    """What :func:`load_weights` did."""

    path: str
    copied: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)   # with parameters in the file, not in the net
    missing: list[str] = field(default_factory=list)   # learnable layers of the net not in the file
    nonfinite: list[str] = field(default_factory=list)  # one line per blob holding NaN/inf
    blob_names: list[tuple[str, int]] = field(default_factory=list)  # (layer, j) of each blob copied

    def lines(self) -> list[str]:
        """Human-readable notes, Caffe's wording where it has one."""
        out = [f"Ignoring source layer {name}" for name in self.ignored]
        out += [f"Layer {name} is not in '{os.path.basename(self.path)}': it keeps its initial values"
                for name in self.missing]
        return out + self.nonfinite


def load_weights(net, path: str) -> WeightsReport:
    """Copy the parameters stored in ``path`` into ``net`` by layer name.

    All or nothing: the whole file is read and checked against the net before a
    single value is copied. Non-finite values are copied with an
    :class:`~engine.errors.EngineWarning` (and a line in the report)."""
    report, assignments = plan_weights(net, path)
    apply_weights(assignments)
    return report


def plan_weights(net, path: str, require_match: bool = True) -> tuple[WeightsReport, list]:
    """(report, [(blob, values)]): what :func:`load_weights` would copy, checked, nothing changed.
    ``require_match=False``: a file that matches no layer of ``net`` is no error (Caffe's
    CopyTrainedLayersFrom ignores every layer it lacks; one of several nets may match)."""
    path = os.fspath(path)
    check_input_file(path, "weights file")
    if is_hdf5_name(path) or _h5py().is_hdf5(path):
        report, assignments = _plan_weights_h5(net, path)
    else:
        report, assignments = _plan_weights_binary(net, path)
    if require_match and not report.copied and _learnable_layer_names(net) and report.ignored:
        raise DataError(f"weights file '{path}' matches no layer of the net: it has {', '.join(report.ignored)}; "
                        f"the net's layers with weights are {', '.join(_learnable_layer_names(net))}")
    _warn_nonfinite(report, assignments)
    return report, assignments


def apply_weights(assignments) -> None:
    """Copy planned values into their blobs (nothing here can fail on the file's account)."""
    for blob, values in assignments:
        _copy_into(blob, values)


def _warn_nonfinite(report: WeightsReport, assignments) -> None:
    for (_, values), (layer, j) in zip(assignments, report.blob_names):
        bad = int(values.size - numpy.count_nonzero(numpy.isfinite(values)))
        if bad:
            line = (f"weights file '{report.path}': layer '{layer}' blob {j} holds {bad} non-finite "
                    f"value(s) (NaN/inf) of {values.size}")
            report.nonfinite.append(line)
            warnings.warn(line, EngineWarning, stacklevel=4)


def _learnable_layer_names(net) -> list[str]:
    return [layer.name for layer in net.layers if layer.blobs]


def _copy_into(blob, values: numpy.ndarray) -> None:
    blob.data[...] = backend.to_device(values.reshape(blob.shape).astype(blob.dtype, copy=False), blob.device)


def _mismatch(path: str, layer: str, j: int, file_shape: str, net_shape) -> ShapeError:
    return ShapeError(
        f"weights file '{path}': layer '{layer}' blob {j} has shape {file_shape} in the file but "
        f"{_shape_text(net_shape)} in the net (rename the layer to learn it from scratch)")


def _load_weights_h5(net, path: str) -> WeightsReport:
    """Load a .caffemodel.h5 (checked whole first, then copied)."""
    check_input_file(path, "weights file")
    report, assignments = _plan_weights_h5(net, path)
    _warn_nonfinite(report, assignments)
    apply_weights(assignments)
    return report


_H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError)


def _plan_weights_h5(net, path: str) -> tuple[WeightsReport, list]:
    report = WeightsReport(path)
    assignments: list = []
    net_layers = {layer.name: layer for layer in net.layers}
    owners = {(layer.name, j): owner for layer, j, _, owner in _owned_blobs(net)}
    with _open_h5(path, "weights file") as handle:
        try:
            if "data" not in handle or not isinstance(handle["data"], _h5py().Group):
                raise DataError(f"weights file '{path}' is not a Caffe HDF5 model (it has no 'data' group)")
            data = handle["data"]
            file_layers = list(data.keys())
            for name in net_layers:
                if name in data and name.split("/")[0] in file_layers:
                    assignments += _plan_h5_layer(path, net_layers[name], data[name], owners, report)
            net_names = list(net_layers)
            report.ignored = [name for name in file_layers if name not in net_layers and
                              not any(n.startswith(name + "/") for n in net_names) and _holds_blobs(data, name)]
        except _H5_ERRORS as exc:
            raise DataError(f"weights file '{path}' is corrupt or not a Caffe HDF5 model: {exc}") from None
    copied = set(report.copied)
    report.missing = [n for n in _learnable_layer_names(net) if n not in copied]
    return report, assignments


def _holds_blobs(data, name: str) -> bool:
    h5py = _h5py()
    try:
        group = data[name]
        return isinstance(group, h5py.Group) and any(isinstance(group[k], h5py.Dataset) for k in group)
    except _H5_ERRORS:  # a dangling link: holds nothing this net could use
        return False


def _h5_member(group, key: str, path: str, where: str):
    """``group[key]`` or DataError (a dangling soft link, an external link, a broken object)."""
    h5py = _h5py()
    link = group.get(key, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise DataError(f"weights file '{path}': '{where}' is an external link to '{link.filename}'")
    try:
        return group[key]
    except _H5_ERRORS as exc:
        raise DataError(f"weights file '{path}': '{where}' cannot be read (a link that leads nowhere?): "
                        f"{exc}") from None


def _h5_is_dataset(group, key: str, path: str, where: str) -> bool:
    """Whether ``group[key]`` is a dataset; DataError naming ``where`` for a broken or outside link."""
    h5py = _h5py()
    link = group.get(key, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise DataError(f"weights file '{path}': '{where}' is an external link to '{link.filename}'")
    try:
        return group.get(key, getclass=True) is h5py.Dataset
    except _H5_ERRORS as exc:
        raise DataError(f"weights file '{path}': '{where}' cannot be read (a link that leads nowhere?): "
                        f"{exc}") from None


def _plan_h5_layer(path: str, layer, group, owners, report: WeightsReport) -> list:
    h5py = _h5py()
    if not isinstance(group, h5py.Group):
        raise DataError(f"weights file '{path}': 'data/{layer.name}' is not a group")
    stored = [k for k in group.keys() if _h5_is_dataset(group, k, path, f"data/{layer.name}/{k}")]
    if len(stored) > len(layer.blobs):
        raise ShapeError(f"weights file '{path}': layer '{layer.name}' has {len(stored)} blob(s) in the "
                         f"file but {len(layer.blobs)} in the net")
    planned = []
    for j, blob in enumerate(layer.blobs):
        key = str(j)
        if key not in group:
            if not owners[(layer.name, j)]:
                continue  # a shared parameter: its owner holds it
            raise ShapeError(f"weights file '{path}': layer '{layer.name}' has {len(stored)} blob(s) in "
                             f"the file but {len(layer.blobs)} in the net (blob {j} is missing)")
        dataset = _h5_member(group, key, path, f"data/{layer.name}/{key}")
        if not isinstance(dataset, h5py.Dataset):
            raise DataError(f"weights file '{path}': 'data/{layer.name}/{key}' is a group, not a dataset")
        if dataset.dtype.kind not in "biuf":
            raise DataError(f"weights file '{path}': blob {j} of layer '{layer.name}' holds {dataset.dtype} "
                            f"values, not numbers")
        if tuple(dataset.shape or ()) != blob.shape:
            raise _mismatch(path, layer.name, j, _shape_text(dataset.shape or ()), blob.shape)
        try:
            values = numpy.asarray(dataset[()])
        except _H5_ERRORS as exc:
            raise DataError(f"weights file '{path}': blob {j} of layer '{layer.name}' cannot be read "
                            f"(corrupt or truncated): {exc}") from None
        planned.append((blob, values))
        report.blob_names.append((layer.name, j))
    report.copied.append(layer.name)
    return planned


def _parse_binary(path: str, what: str, message):
    """``path`` parsed as a binary protobuf ``message`` (a class); ``what`` names the file in errors."""
    data = _read_bytes(path, what)
    parsed = message()
    try:
        parsed.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise DataError(f"{what} '{path}' is corrupt or truncated (not a binary Caffe "
                        f"{message.__name__}: {exc})") from None
    return parsed


def _parse_net_binary(path: str) -> caffe_pb2.NetParameter:
    return _parse_binary(path, "weights file", caffe_pb2.NetParameter)


def _source_layers(path: str) -> list[tuple[str, list]]:
    """(name, [BlobProto or ScannedBlob]) of every layer in the file, V2 ``layer``
    and V1 / V0 ``layers``: scanned without copying the values (engine.caffemodel_scan),
    or parsed by protobuf when the scan declines the file."""
    from .caffemodel_scan import map_file, scan_layers
    layers: list[tuple[str, list]] | None = scan_layers(map_file(path) or _read_bytes(path, "weights file"))
    if layers is None:
        param = _parse_net_binary(path)
        layers = [(layer.name, list(layer.blobs)) for layer in param.layer] + _v1_layers(path, param)
    if not layers:
        raise DataError(f"weights file '{path}' holds no layers (empty, or not a .caffemodel)")
    return layers


def _scanned_values(scanned, count: int, where: str) -> numpy.ndarray:
    """A ScannedBlob's values (a view into the file's bytes), checked as proto_values does."""
    values = scanned.values if scanned.values is not None else numpy.zeros(0, numpy.float32)
    if values.size != count:
        raise DataError(f"{where} holds {values.size} values but its shape needs {count} "
                        f"(the file is corrupt or truncated)")
    return values


def _load_weights_binary(net, path: str) -> WeightsReport:
    """Load a binary .caffemodel (checked whole first, then copied)."""
    check_input_file(path, "weights file")
    report, assignments = _plan_weights_binary(net, path)
    _warn_nonfinite(report, assignments)
    apply_weights(assignments)
    return report


def _plan_weights_binary(net, path: str) -> tuple[WeightsReport, list]:
    report = WeightsReport(path)
    assignments = []
    net_layers = {layer.name: layer for layer in net.layers}
    for name, blobs in _source_layers(path):
        layer = net_layers.get(name)
        if layer is None:
            if blobs:
                report.ignored.append(name)
            continue
        if len(blobs) != len(layer.blobs):
            raise ShapeError(f"weights file '{path}': layer '{name}' has {len(blobs)} blob(s) in the file "
                             f"but {len(layer.blobs)} in the net")
        for j, (proto, blob) in enumerate(zip(blobs, layer.blobs)):
            header = getattr(proto, "header", proto)  # a ScannedBlob's shape fields
            if not shape_matches(header, blob.shape):
                raise _mismatch(path, name, j, _describe_proto_shape(header), blob.shape)
            where = f"weights file '{path}': layer '{name}' blob {j}"
            assignments.append((blob, _scanned_values(proto, blob.count(), where) if header is not proto
                                else proto_values(proto, blob.count(), where)))
            report.blob_names.append((name, j))
        report.copied.append(name)
    copied = set(report.copied)
    report.missing = [n for n in _learnable_layer_names(net) if n not in copied]
    return report, assignments


def net_to_proto(net, write_diff: bool = False) -> caffe_pb2.NetParameter:
    """Caffe's Net::ToProto: the net's layers with their parameter blobs."""
    param = caffe_pb2.NetParameter(name=net.name)
    for layer, layer_param in zip(net.layers, net.layer_params):
        out = param.layer.add()
        out.CopyFrom(layer_param)
        del out.blobs[:]
        for blob in layer.blobs:
            blob_to_proto(out.blobs.add(), blob.data, blob.diff if write_diff else None)
    return param


def save_weights(net, path: str, write_diff: bool = False) -> None:
    """Write ``net``'s parameters: HDF5 for a ``.h5`` name, else binary .caffemodel."""
    path = os.fspath(path)
    if is_hdf5_name(path):
        _save_weights_h5(net, path, write_diff)
    else:
        save_weights_binary(net, path, write_diff)


def save_weights_binary(net, path: str, write_diff: bool = False) -> None:
    """Write ``net``'s parameters as a binary .caffemodel: the bytes of
    ``net_to_proto(net).SerializeToString()``, encoded from the arrays directly."""
    write_chunks(path, net_chunks(net, write_diff))


def _save_weights_h5(net, path: str, write_diff: bool) -> None:
    h5py = _h5py()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            data = handle.create_group("data")
            diff = handle.create_group("diff") if write_diff else None
            groups: dict[str, tuple] = {}
            for layer, j, blob, owner in _owned_blobs(net):
                if layer.name not in groups:
                    groups[layer.name] = (data.create_group(layer.name),
                                          diff.create_group(layer.name) if diff is not None else None)
                if owner:
                    data_group, diff_group = groups[layer.name]
                    data_group.create_dataset(str(j), data=backend.to_numpy(blob.data))
                    if diff_group is not None:
                        diff_group.create_dataset(str(j), data=backend.to_numpy(blob.diff))
            for layer in net.layers:  # Caffe writes a group for every layer, learnable or not
                if layer.name not in groups:
                    data.create_group(layer.name)
                    if diff is not None:
                        diff.create_group(layer.name)


# ---------------------------------------------------------------------------
# V1 / V0 caffemodels (``layers`` field) and unknown fields
# ---------------------------------------------------------------------------
def _unknown_fields(message, number: int) -> list[bytes]:
    from google.protobuf import unknown_fields
    return [f.data for f in unknown_fields.UnknownFieldSet(message)
            if f.field_number == number and f.wire_type == 2]


def _v1_layers(path: str, param: caffe_pb2.NetParameter) -> list[tuple[str, list]]:
    """(name, [BlobProto]) of the deprecated ``layers`` (V1; V0 wrapped in V1), by
    name as Caffe's upgrade step leaves them."""
    layers = []
    for old in param.layers:
        if old.HasField("layer"):  # V0: name and blobs live in the wrapped V0 layer
            layers.append((old.layer.name or old.name, list(old.layer.blobs) or list(old.blobs)))
        else:
            layers.append((old.name, list(old.blobs)))
    return layers



def encode_bytes_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, appended to a message's bytes."""
    return field_header(number, len(payload)) + payload


# ---------------------------------------------------------------------------
# snapshot names
# ---------------------------------------------------------------------------
def snapshot_prefix(solver) -> str:
    """The snapshot prefix as a path: relative prefixes resolve against the
    solver file's folder (the working directory for a solver given as text).

    As Caffe: no prefix -> the solver file's name without extension; a prefix
    that is a folder -> that folder plus the solver file's stem. A prefix inside a
    read-only input (a shipped example, the test data, a read-only folder) moves to
    the per-user data folder (engine/snapshot_location.py).
    """
    from .snapshot_location import relocate
    param, path = solver.param, solver.path
    prefix = param.snapshot_prefix
    base = os.path.dirname(path) if path else os.getcwd()
    stem = os.path.splitext(os.path.basename(path))[0] if path else ""
    if not prefix:
        if not stem:
            raise NetDefinitionError("cannot snapshot: the solver has no snapshot_prefix")
        prefix = stem
    full = os.path.join(base, prefix)
    if prefix.endswith(("/", os.sep)) or os.path.isdir(full):
        if not stem:
            raise NetDefinitionError(f"cannot snapshot: snapshot_prefix '{prefix}' is a folder")
        full = os.path.join(full, stem)
    return relocate(os.path.normpath(full), base)


def snapshot_filename(solver, extension: str) -> str:
    """``<prefix>_iter_<iter><extension>`` as Caffe's SnapshotFilename."""
    return f"{snapshot_prefix(solver)}_iter_{solver.iter}{extension}"


def _learned_net_text(solver, model_path: str) -> str:
    """What goes in ``learned_net``: the model path relative to the solver's folder
    (what Caffe writes when run from that folder), absolute if elsewhere."""
    base = os.path.dirname(solver.path) if solver.path else os.getcwd()
    relative = os.path.relpath(model_path, base)
    return model_path if relative.startswith("..") else relative


def snapshot(solver) -> list[str]:
    """Write ``<prefix>_iter_<N>.caffemodel[.h5]`` and ``.solverstate[.h5]``; returns both paths."""
    hdf5 = solver.param.snapshot_format == caffe_pb2.SolverParameter.HDF5
    suffix = ".h5" if hdf5 else ""
    model_path = snapshot_filename(solver, ".caffemodel" + suffix)
    state_path = snapshot_filename(solver, ".solverstate" + suffix)
    os.makedirs(os.path.dirname(model_path) or ".", exist_ok=True)
    save_weights(solver.net, model_path, write_diff=solver.param.snapshot_diff)
    learned = _learned_net_text(solver, model_path)
    if hdf5:
        _write_state_h5(solver, state_path, learned)
    else:
        _write_state_binary(solver, state_path, learned)
    return [model_path, state_path]


# ---------------------------------------------------------------------------
# solver state: writing
# ---------------------------------------------------------------------------
def _write_fixed_string(group, name: str, text: str) -> None:
    """A scalar null-terminated fixed-length string, as HDF5's H5LTmake_dataset_string."""
    h5py = _h5py()
    raw = text.encode("utf-8")
    string_type = h5py.h5t.C_S1.copy()
    string_type.set_size(len(raw) + 1)
    string_type.set_strpad(h5py.h5t.STR_NULLTERM)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    dataset = h5py.h5d.create(group.id, name.encode(), string_type, space)
    dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, numpy.array(raw + b"\0", dtype=f"S{len(raw) + 1}"))


def _write_state_h5(solver, path: str, learned: str) -> None:
    h5py = _h5py()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset("iter", data=numpy.array([solver.iter], dtype=numpy.int32))
            _write_fixed_string(handle, "learned_net", learned)
            handle.create_dataset("current_step", data=numpy.array([solver.current_step], dtype=numpy.int32))
            history = handle.create_group("history")
            for i, array in enumerate(solver.history):
                history.create_dataset(str(i), data=backend.to_numpy(array))
            write_extras(handle.create_group(EXTRA_GROUP), solver)


def _write_state_binary(solver, path: str, learned: str) -> None:
    buffer = _stdio.BytesIO()
    with _h5py().File(buffer, "w") as handle:
        write_extras(handle.create_group(EXTRA_GROUP), solver)
    state = solver_state_chunks(solver.iter, learned, solver.current_step, solver.history)
    write_chunks(path, [*state, encode_bytes_field(EXTRA_FIELD_NUMBER, buffer.getvalue())])


def _nets(solver):
    yield "train", solver.net
    for k, net in enumerate(solver.test_nets):
        yield f"test{k}", net


def layer_state(layer) -> dict | None:
    """The position of a data layer (its ``state()``, or its batcher's), else None."""
    getter = getattr(layer, "state", None)
    if callable(getter):
        return getter()
    batcher = getattr(layer, "batcher", None)
    if batcher is not None and callable(getattr(batcher, "state", None)):
        return batcher.state()
    return None


def set_layer_state(layer, state: dict) -> None:
    setter = getattr(layer, "set_state", None)
    if callable(setter):
        setter(state)
    else:
        layer.batcher.set_state(state)


def write_extras(group, solver) -> None:
    """The engine's additions to a solver state: RNG, data positions, loss window."""
    group.attrs["version"] = EXTRA_VERSION
    group.attrs["rng_state"] = json.dumps(rng.get_state())
    group.create_dataset("smoothed_loss", data=numpy.float64(solver.smoothed_loss))
    group.create_dataset("losses", data=numpy.asarray(solver.losses, dtype=numpy.float64))
    group.attrs["loss_window_start"] = solver.loss_window_start  # the window's oldest slot follows it
    layers = group.create_group("data_layers")
    for net_name, net in _nets(solver):
        for i, layer in enumerate(net.layers):
            state = layer_state(layer)
            if state is None:
                continue
            entry = layers.create_group(f"{net_name}/{i}")
            entry.attrs["layer"] = layer.name
            for key, value in state.items():
                entry.create_dataset(key, data=numpy.asarray(value))


# ---------------------------------------------------------------------------
# solver state: reading
# ---------------------------------------------------------------------------
@dataclass
class RestoreReport:
    """What :func:`restore` restored (and what it could not)."""

    path: str
    iteration: int = 0
    weights: WeightsReport | None = None
    histories: int = 0
    data_layers: list[str] = field(default_factory=list)   # "net/layer" whose position was restored
    random_stream: bool = False
    loss_window: bool = False

    def lines(self) -> list[str]:
        out = [f"Restored iteration {self.iteration} from '{os.path.basename(self.path)}': "
               f"{self.histories} history blob(s)"]
        if self.weights is not None:
            out.append(f"Weights of {len(self.weights.copied)} layer(s) from '{self.weights.path}'")
            out += self.weights.nonfinite
        else:
            out.append("Not restored: the weights (the state names no learned_net); the net keeps its own")
        if self.data_layers:
            out.append(f"Data positions: {', '.join(self.data_layers)}")
        if not self.random_stream:
            out.append("Not restored: the random stream and the data positions (a state written by Caffe: "
                       "data layers restart at row 0)")
        return out


@dataclass
class _RestorePlan:
    """Everything a state file holds, read and checked, nothing applied yet."""

    iteration: int
    current_step: int
    histories: list = field(default_factory=list)
    weights: tuple | None = None                  # (WeightsReport, assignments)
    layer_states: list = field(default_factory=list)  # (layer, state, label)
    losses: tuple | None = None                   # (losses, smoothed, window start)
    rng_state: dict | None = None


def restore(solver, path: str) -> RestoreReport:
    """Resume ``solver`` from a .solverstate or .solverstate.h5 (Caffe's Restore).

    All or nothing: the file, its weights, histories, data positions and random
    stream are read and checked first; the solver changes only when all fit."""
    path = os.fspath(path)
    check_input_file(path, "solver state")
    if is_hdf5_name(path) or _h5py().is_hdf5(path):
        plan = _plan_restore_h5(solver, path)
    else:
        plan = _plan_restore_binary(solver, path)
    from .lr_policy import learning_rate
    rate = float(learning_rate(solver.param, plan.iteration, plan.current_step)[0])
    report = _apply_restore(solver, plan, path)
    solver.learning_rate = rate
    return report


def _apply_restore(solver, plan: _RestorePlan, path: str) -> RestoreReport:
    report = RestoreReport(path, iteration=plan.iteration, histories=len(plan.histories))
    if plan.weights is not None:
        report.weights = plan.weights[0]
        apply_weights(plan.weights[1])
    for target, values in zip(solver.history, plan.histories):
        target[...] = backend.to_device(values.reshape(target.shape).astype(target.dtype), solver.device)
    for layer, state, label in plan.layer_states:
        set_layer_state(layer, state)
        report.data_layers.append(label)
    if plan.losses is not None:
        solver.losses, solver.smoothed_loss, solver.loss_window_start = plan.losses
        report.loss_window = True
    if plan.rng_state is not None:
        rng.set_state(plan.rng_state)
        report.random_stream = True
    solver.iter, solver.current_step = plan.iteration, plan.current_step
    return report


def _find_learned_net(solver, state_path: str, learned: str) -> str:
    candidates = []
    if os.path.isabs(learned):
        candidates.append(learned)
    candidates.append(os.path.join(os.path.dirname(os.path.abspath(state_path)), os.path.basename(learned)))
    if solver.path and not os.path.isabs(learned):
        candidates.append(os.path.join(os.path.dirname(solver.path), learned))
    candidates.append(learned)
    for candidate in candidates:
        if "\0" not in candidate and os.path.isfile(candidate):
            return candidate
    raise DataError(f"solver state '{state_path}' names the weights '{learned}', which were not found "
                    f"(looked at: {', '.join(dict.fromkeys(candidates))})")


def _plan_learned_weights(solver, state_path: str, learned: str) -> tuple:
    """The weights a state names, planned; every learnable layer of the net must get its values
    (a resume into a net with a renamed layer, or from another net's weights, cannot be right)."""
    weights_path = _find_learned_net(solver, state_path, learned)
    report, assignments = plan_weights(solver.net, weights_path)
    if report.missing:
        raise DataError(
            f"solver state '{state_path}': its weights '{weights_path}' have no values for layer(s) "
            f"{', '.join(report.missing)} of the net (the file has: "
            f"{', '.join(report.copied + report.ignored) or 'no layer with weights'}); the state was written "
            f"for another net, or a layer was renamed")
    return report, assignments


def _check_history_count(path: str, found: int, solver) -> None:
    if found != len(solver.history):
        raise DataError(
            f"solver state '{path}' has {found} history blob(s) but this {solver.type_name} solver needs "
            f"{len(solver.history)} (written for another net or solver type?)")


def _checked_history(solver, i: int, values: numpy.ndarray, shape, path: str) -> numpy.ndarray:
    target = solver.history[i]
    if tuple(shape) != tuple(target.shape):
        raise ShapeError(f"solver state '{path}': history blob {i} has shape {_shape_text(shape)} in the "
                         f"file but the solver needs {_shape_text(target.shape)}")
    return numpy.asarray(values)


def _checked_counters(path: str, iteration: int, current_step: int) -> tuple[int, int]:
    if iteration < 0 or current_step < 0:
        raise DataError(f"solver state '{path}': iter {iteration} and current_step {current_step} "
                        f"must be >= 0")
    return iteration, current_step


def _read_h5_int(handle, name: str, path: str) -> int:
    if name not in handle or not isinstance(handle[name], _h5py().Dataset):
        raise DataError(f"solver state '{path}' has no '{name}' dataset (not a Caffe .solverstate.h5)")
    dataset = handle[name]
    if dataset.dtype.kind not in "iu" or dataset.size < 1:
        raise DataError(f"solver state '{path}': '{name}' holds {dataset.dtype} x {dataset.size}, "
                        f"not an integer")
    return int(numpy.asarray(dataset[()]).reshape(-1)[0])


def _read_h5_string(dataset, path: str, name: str) -> str:
    if not isinstance(dataset, _h5py().Dataset):
        raise DataError(f"solver state '{path}': '{name}' is not a dataset")
    value = dataset[()]
    if isinstance(value, numpy.ndarray):
        if value.size < 1:
            raise DataError(f"solver state '{path}': '{name}' is empty")
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        try:
            value = value.split(b"\0")[0].decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"solver state '{path}': '{name}' is not UTF-8 text") from None
    return str(value)


def _plan_restore_h5(solver, path: str) -> _RestorePlan:
    h5py = _h5py()
    with _open_h5(path, "solver state") as handle:
        try:
            plan = _RestorePlan(*_checked_counters(path, _read_h5_int(handle, "iter", path),
                                                   _read_h5_int(handle, "current_step", path)))
            if "learned_net" in handle:
                learned = _read_h5_string(handle["learned_net"], path, "learned_net")
                plan.weights = _plan_learned_weights(solver, path, learned)
            if "history" not in handle or not isinstance(handle["history"], h5py.Group):
                raise DataError(f"solver state '{path}' has no 'history' group")
            history = handle["history"]
            _check_history_count(path, len(history), solver)
            for i in range(len(solver.history)):
                dataset = history.get(str(i))
                if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "biuf":
                    raise DataError(f"solver state '{path}' lacks history blob {i} (or it is not numbers)")
                plan.histories.append(_checked_history(solver, i, dataset[()], dataset.shape or (), path))
            if EXTRA_GROUP in handle:
                _plan_extras(handle[EXTRA_GROUP], solver, path, plan)
        except DataError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise DataError(f"solver state '{path}' is corrupt or truncated: {exc}") from None
    return plan


def _plan_restore_binary(solver, path: str) -> _RestorePlan:
    state = _parse_binary(path, "solver state", caffe_pb2.SolverState)
    if not state.HasField("iter"):
        raise DataError(f"solver state '{path}' has no iteration count (empty or not a .solverstate)")
    plan = _RestorePlan(*_checked_counters(path, state.iter, state.current_step))
    if state.HasField("learned_net"):
        plan.weights = _plan_learned_weights(solver, path, state.learned_net)
    _check_history_count(path, len(state.history), solver)
    for i, proto in enumerate(state.history):
        shape = proto_shape(proto)
        if shape is None:
            shape = _legacy_shape(proto)
        _checked_history(solver, i, numpy.zeros(0), shape, path)  # the shape first: the count may be huge
        count = int(numpy.prod(shape)) if shape else 1
        plan.histories.append(proto_values(proto, count, f"solver state '{path}': history blob {i}"))
    extras = _unknown_fields(state, EXTRA_FIELD_NUMBER)
    if extras:
        try:
            with _h5py().File(_stdio.BytesIO(extras[-1]), "r") as handle:
                _plan_extras(handle[EXTRA_GROUP], solver, path, plan)
        except DataError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise DataError(f"solver state '{path}': the Backprop Studio extras are corrupt: {exc}") from None
    return plan


def _dataset_value(dataset):
    value = dataset[()]
    if isinstance(value, numpy.ndarray) and value.shape:
        return value
    return value.item() if hasattr(value, "item") else value


#: The bit generators a saved random stream may name (nothing else is looked up).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _checked_rng_state(text, path: str) -> dict:
    """The saved random stream, proven to load into a fresh generator of its kind."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        state = json.loads(str(text))
    except ValueError as exc:
        raise DataError(f"solver state '{path}': the saved random stream (rng_state) is not JSON: {exc}") from None
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise DataError(f"solver state '{path}': the saved random stream names no known generator "
                        f"({kind!r}; expected one of {', '.join(_BIT_GENERATORS)})")
    try:
        getattr(numpy.random, kind)().state = {k: v for k, v in state.items() if k != rng.CAFFE_STATE_KEY}
        if rng.CAFFE_STATE_KEY in state:  # Caffe's stream (fillers, Dropout); older states lack it
            checked_caffe_state(state[rng.CAFFE_STATE_KEY])
        if rng.GLIBC_STATE_KEY in state:  # glibc rand() (HDF5Data's shuffles); older states lack it
            checked_glibc_state(state[rng.GLIBC_STATE_KEY])
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise DataError(f"solver state '{path}': the saved random stream (rng_state) is corrupt: {exc}") from None
    if kind != rng.get_state().get("bit_generator"):
        raise DataError(f"solver state '{path}': the saved random stream is a {kind}, the engine's a "
                        f"{rng.get_state().get('bit_generator')}")
    return state


def _checked_batcher_state(layer, state: dict, where: str) -> dict:
    """An ArrayBatcher position: a cursor in [0, rows] and an order of the rows."""
    rows = layer.batcher.rows
    try:
        cursor = int(state["cursor"])
        order = numpy.asarray(state["order"]).reshape(-1)
    except KeyError as exc:
        raise DataError(f"{where}: data layer '{layer.name}': the saved position lacks '{exc.args[0]}'") from None
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: data layer '{layer.name}': the saved position is not a number") from None
    if not 0 <= cursor <= rows:
        raise DataError(f"{where}: data layer '{layer.name}': the saved cursor {cursor} is outside its "
                        f"{rows} rows (the state was saved for other data)")
    if order.dtype.kind not in "iu" or len(order) != rows or \
            not numpy.array_equal(numpy.sort(order), numpy.arange(rows)):
        raise DataError(f"{where}: data layer '{layer.name}': the saved row order is not an order of its "
                        f"{rows} rows (it has {len(order)}; the state was saved for other data)")
    return {"cursor": cursor, "order": order.astype(numpy.intp)}


def _checked_layer_state(layer, state: dict, where: str) -> dict:
    checker = getattr(layer, "check_state", None)
    if callable(checker):
        try:
            return checker(state)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
    if getattr(layer, "batcher", None) is not None and hasattr(layer.batcher, "rows"):
        return _checked_batcher_state(layer, state, where)
    return state


#: The most values one saved data position or loss window may hold (a row order of 100M rows).
MAX_STATE_VALUES = 10**8


def _small_dataset(group, key: str, where: str, what: str):
    """``group[key]``: a numeric dataset of at most MAX_STATE_VALUES values (checked before reading)."""
    dataset = group.get(key)
    if not isinstance(dataset, _h5py().Dataset) or dataset.dtype.kind not in "biuf":
        raise DataError(f"{where}: {what}: '{key}' is not a dataset of numbers")
    if dataset.size > MAX_STATE_VALUES:
        raise DataError(f"{where}: {what}: '{key}' declares {dataset.size} values (at most {MAX_STATE_VALUES})")
    return dataset


def _plan_extras(group, solver, path: str, plan: _RestorePlan) -> None:
    """Read and check what :func:`write_extras` stored (applied by :func:`_apply_restore`)."""
    where = f"solver state '{path}'"
    layers = group.get("data_layers")
    if layers is not None:
        nets = dict(_nets(solver))
        for net_name in layers:
            net = nets.get(net_name)
            if net is None:
                raise DataError(f"{where} has data positions for '{net_name}', which this solver does not have")
            for index in layers[net_name]:
                entry = layers[net_name][index]
                try:
                    i = int(index)
                except ValueError:
                    raise DataError(f"{where}: data position '{net_name}/{index}' is not a layer number") from None
                if "layer" not in entry.attrs:
                    raise DataError(f"{where}: data position '{net_name}/{index}' does not name its layer")
                name = entry.attrs["layer"]
                name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
                if i >= len(net.layers) or net.layers[i].name != name:
                    raise DataError(f"{where}: data layer '{name}' is not layer {i} of the "
                                    f"{net_name} net (the state belongs to another net)")
                state = {key: _dataset_value(_small_dataset(entry, key, where, f"data position of '{name}'"))
                         for key in entry}
                plan.layer_states.append((net.layers[i], _checked_layer_state(net.layers[i], state, where),
                                          f"{name} ({net_name})"))
    if "losses" in group:
        stored = _small_dataset(group, "losses", where, "the loss window")
        if stored.size > max(1, solver.param.average_loss):
            raise DataError(f"{where}: the loss window holds {stored.size} losses but average_loss is "
                            f"{solver.param.average_loss}")
        losses = [float(x) for x in numpy.asarray(stored[()], dtype=numpy.float64).reshape(-1)]
        smoothed = float(numpy.asarray(_small_dataset(group, "smoothed_loss", where, "the smoothed loss")[()],
                                       dtype=numpy.float64).reshape(-1)[0])
        start = int(group.attrs.get("loss_window_start", 0))
        plan.losses = (losses, smoothed, start)
    state = group.attrs.get("rng_state")
    if state is not None:
        plan.rng_state = _checked_rng_state(state, path)


def read_extras(group, solver, path: str) -> None:
    """Restore what :func:`write_extras` stored (checked whole, then applied)."""
    plan = _RestorePlan(solver.iter, solver.current_step)
    _plan_extras(group, solver, path, plan)
    for layer, state, _ in plan.layer_states:
        set_layer_state(layer, state)
    if plan.losses is not None:
        solver.losses, solver.smoothed_loss, solver.loss_window_start = plan.losses
    if plan.rng_state is not None:
        rng.set_state(plan.rng_state)
