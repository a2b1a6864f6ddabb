"""Seeded bad inputs for the engine (issue 15), and the worker that runs them.

``cases(seed)`` lists every case by name, with what it must give:

- ``error``: one of the engine's errors (engine/errors.py) whose message holds
  every string of ``must_name`` (the file, layer, blob or field at fault);
- ``warning``: no error, an EngineWarning naming ``must_name``;
- ``error_or_ok``: a random mutation that may still be a valid file: an engine
  error naming the file or a layer, or success.

Every case runs in a worker process (``python -m tests.engine.fuzz_cases DIR``)
with an address-space limit (no allocation past the cap: the engine must refuse
first) and a per-case alarm (no hang). The worker prints one JSON object per case.
Loads that fail must leave the net or solver as it was (all or nothing): the
worker compares a fingerprint of weights, histories, data positions and the
random stream before and after.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable

CASE_SECONDS = 10
#: Address space the worker may add to what its imports took.
EXTRA_ADDRESS_SPACE = 2 * 2**30

MLP = """name: "mlp"
layer { name: "data" type: "BuiltinData" top: "data" top: "label"
        builtin_data_param { dataset: "spiral" num_points: 60 batch_size: 8 shuffle: true } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param { num_output: 6 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""

INPUT = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } } }\n'

SOLVER = """net: "{net}"
base_lr: 0.1
momentum: 0.9
lr_policy: "fixed"
max_iter: 100
random_seed: 7
snapshot_prefix: "{prefix}"
"""


@dataclasses.dataclass
class Case:
    name: str
    expect: str                      # "error", "warning" or "error_or_ok"
    run: Callable[[Path], object]    # the operation, given the case's own folder
    must_name: tuple[str, ...] = ()  # strings the message must hold ({dir} = the case's folder)


# ---------------------------------------------------------------------------
# building blocks (run inside the worker)
# ---------------------------------------------------------------------------
def _engine():
    import engine
    return engine


def _write(folder: Path, name: str, data) -> str:
    path = folder / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return str(path)


def _net_file(folder: Path, text: str, name: str = "net.prototxt") -> str:
    return _write(folder, name, text)


def _solver_file(folder: Path, extra: str = "", net_text: str = MLP, prefix: str = "snap/mlp") -> str:
    net = _net_file(folder, net_text)
    return _write(folder, "solver.prototxt", SOLVER.format(net=net, prefix=prefix) + extra)


def _build_net(source) -> None:
    _engine().Net(source, _engine().TRAIN)


def fingerprint(solver_or_net) -> str:
    """A digest of everything a load may change: weights, histories, iteration,
    data positions and the random stream."""
    import numpy

    from engine import io as engine_io
    from engine import rng
    digest = hashlib.sha256()
    net = getattr(solver_or_net, "net", solver_or_net)
    for blob in net.learnable_params:
        digest.update(numpy.ascontiguousarray(blob.data).tobytes())
    for array in getattr(solver_or_net, "history", []):
        digest.update(numpy.ascontiguousarray(array).tobytes())
    digest.update(str(getattr(solver_or_net, "iter", 0)).encode())
    for layer in net.layers:
        state = engine_io.layer_state(layer)
        if state:
            for key in sorted(state):
                digest.update(key.encode() + numpy.asarray(state[key]).tobytes())
    digest.update(json.dumps(rng.get_state(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


class PartialLoad(AssertionError):
    """A load failed but changed the net or solver (not all or nothing)."""


def _all_or_nothing(target, load: Callable[[], object]) -> None:
    before = fingerprint(target)
    try:
        load()
    except Exception:
        if fingerprint(target) != before:
            raise PartialLoad("the failed load changed the weights, histories or positions") from None
        raise


# ---------------------------------------------------------------------------
# nets
# ---------------------------------------------------------------------------
def _mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rnd.choice(["truncate", "flip", "insert", "delete", "duplicate"])
    if kind == "truncate":
        return bytes(buf[:rnd.randrange(1, len(buf))])
    position = rnd.randrange(len(buf))
    if kind == "flip":
        for _ in range(rnd.randint(1, 4)):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
    elif kind == "insert":
        buf[position:position] = rnd.choice([b"\xff", b"\x00", b"{", b"}", b'"', b":", b"-1", b" 1e30"])
    elif kind == "delete":
        del buf[position:position + rnd.randint(1, 8)]
    else:
        buf[position:position] = buf[position:position + rnd.randint(1, 40)]
    return bytes(buf)


def _mutated_net_case(index: int, rnd: random.Random) -> Case:
    mutated = _mutate_bytes(MLP.encode(), rnd)

    def run(folder: Path):
        _build_net(_write(folder, "mutated.prototxt", mutated))
    return Case(f"net-mutation-{index}", "error_or_ok", run, ("{dir}",))


def _net_text_case(name: str, text: str, expect: str, *must_name: str) -> Case:
    def run(folder: Path):
        _build_net(_net_file(folder, text))
    return Case(name, expect, run, must_name)


def _huge_cases(rnd: random.Random) -> list[Case]:
    out = []
    for k in range(6):
        big = rnd.choice([10**9, 2**31 - 1, 10**12, 3 * 10**8])
        out.append(_net_text_case(
            f"huge-input-{k}", f'layer {{ name: "in{k}" type: "Input" top: "x" '
                               f'input_param {{ shape {{ dim: {big} dim: {rnd.randint(2, 64)} }} }} }}',
            "error", f"'in{k}'", "x", str(big), "needs"))
        out.append(_net_text_case(
            f"huge-dummy-{k}", f'layer {{ name: "dummy{k}" type: "DummyData" top: "d" '
                               f'dummy_data_param {{ shape {{ dim: {big} }} data_filler {{ type: "gaussian" }} }} }}',
            "error", f"'dummy{k}'", str(big), "needs"))
        out.append(_net_text_case(
            f"huge-ip-{k}", INPUT + f'layer {{ name: "fc{k}" type: "InnerProduct" bottom: "x" top: "y" '
                                    f'inner_product_param {{ num_output: {big} }} }}',
            "error", f"'fc{k}'", "needs"))
        out.append(_net_text_case(
            f"huge-conv-{k}", INPUT + f'layer {{ name: "conv{k}" type: "Convolution" bottom: "x" top: "y" '
                                      f'convolution_param {{ num_output: {big} kernel_size: 1 }} }}',
            "error", f"'conv{k}'", "needs"))
    out.append(_net_text_case("negative-dim", 'layer { name: "neg" type: "Input" top: "x" '
                                              'input_param { shape { dim: 2 dim: -3 } } }', "error", "'neg'"))
    out.append(_net_text_case("dummy-negative-dim", 'layer { name: "dn" type: "DummyData" top: "x" '
                                                    'dummy_data_param { shape { dim: -2 } } }', "error", "'dn'"))
    return out


def _in_place_cases() -> list[Case]:
    layers = {
        "InnerProduct": "inner_product_param { num_output: 4 }",
        "Convolution": "convolution_param { num_output: 5 kernel_size: 1 }",
        "Deconvolution": "convolution_param { num_output: 3 kernel_size: 1 }",
        # Power, Log, BNLL, Clip and Threshold run in place as Caffe allows (they keep their input)
        "LRN": "", "AbsVal": "", "Flatten": "", "Pooling": "pooling_param { kernel_size: 2 stride: 2 }",
        "Reshape": "reshape_param { shape { dim: 0 dim: -1 } }",
    }
    out = [_net_text_case(f"in-place-{kind}", INPUT + f'layer {{ name: "inplace_{kind}" type: "{kind}" bottom: "x" '
                                                      f'top: "x" {param} }}', "error", f"'inplace_{kind}'", "in place")
           for kind, param in layers.items()]
    two = 'layer { name: "in" type: "Input" top: "x" top: "z" input_param { shape { dim: 2 dim: 3 } } }\n'
    for op in ("PROD", "MAX"):
        out.append(_net_text_case(
            f"in-place-eltwise-{op}", two + f'layer {{ name: "elt" type: "Eltwise" bottom: "x" bottom: "z" '
                                            f'top: "x" eltwise_param {{ operation: {op} }} }}',
            "error", "'elt'", "in place"))
    out.append(_net_text_case(
        "in-place-loss", two + 'layer { name: "lossy" type: "EuclideanLoss" bottom: "x" bottom: "z" top: "x" }',
        "error", "'lossy'", "in place"))
    return out


def _builtin_cases() -> list[Case]:
    bad = [("num_classes: 1000000000", "num_classes"), ("num_classes: 0", "num_classes"),
           ("num_points: 4000000000", "points"), ("noise: nan", "noise"), ("noise: -1", "noise"),
           ("test_fraction: 1", "test_fraction"), ("test_fraction: inf", "test_fraction"),
           ('dataset: "mnist"', "mnist"), ("num_points: 2 test_fraction: 0.9", "split")]
    out = []
    for k, (param, field) in enumerate(bad):
        text = (f'layer {{ name: "builtin{k}" type: "BuiltinData" top: "d" top: "l" '
                f'builtin_data_param {{ {param} }} }}')
        out.append(_net_text_case(f"builtin-{k}", text, "error", f"'builtin{k}'", field))
    return out


def _special_file_cases() -> list[Case]:
    def fifo(folder: Path) -> str:
        path = folder / "pipe.prototxt"
        os.mkfifo(path)
        return str(path)

    def folder_itself(folder: Path) -> str:
        return str(folder)

    def dev_zero(folder: Path) -> str:
        return "/dev/zero"

    def missing(folder: Path) -> str:
        return str(folder / "missing.prototxt")

    def binary(folder: Path) -> str:
        return _write(folder, "binary.prototxt", bytes(range(256)) * 4)

    def non_utf8(folder: Path) -> str:
        return _write(folder, "latin1.prototxt", 'name: "caf\xe9"\n'.encode("latin-1"))

    def nul_path(folder: Path) -> str:
        return str(folder / "a\0b.prototxt")

    def sparse_3gb(folder: Path) -> str:  # over protobuf's 2 GB limit, yet no disk used
        path = folder / "huge.bin"
        with open(path, "wb") as handle:
            handle.truncate(3 * 2**30)
        return str(path)

    makers = {"fifo": fifo, "folder": folder_itself, "dev-zero": dev_zero, "missing": missing,
              "binary": binary, "non-utf8": non_utf8, "nul-in-path": nul_path, "3gb": sparse_3gb}
    out = []
    for label, maker in makers.items():
        must = () if label in ("dev-zero", "nul-in-path") else ("{dir}",)
        def net(d: Path, m=maker):
            _build_net(m(d))
        out.append(Case(f"net-file-{label}", "error", net, must))

        def solver_file(d: Path, m=maker):
            _engine().get_solver(m(d))
        out.append(Case(f"solver-file-{label}", "error", solver_file, must))

        def weights(d: Path, m=maker):
            net = _engine().Net(MLP)
            _all_or_nothing(net, lambda: net.copy_from(m(d)))
        out.append(Case(f"weights-file-{label}", "error", weights, must))

        def state(d: Path, m=maker):
            solver = _engine().get_solver(_solver_file(d))
            _all_or_nothing(solver, lambda: solver.restore(m(d)))
        out.append(Case(f"state-file-{label}", "error", state, must))
        def source_list(d: Path, m=maker):
            _build_net(_h5_net(d, m(d)))
        out.append(Case(f"h5-list-{label}", "error", source_list, must))
    return out


def _filler_cases() -> list[Case]:
    out = []
    for kind in ("xavier", "msra", "gaussian", "uniform"):
        text = (f'layer {{ name: "zero_{kind}" type: "DummyData" top: "d" '
                f'dummy_data_param {{ shape {{ dim: 0 dim: 3 }} data_filler {{ type: "{kind}" }} }} }}')
        out.append(_net_text_case(f"zero-size-{kind}", text, "error_or_ok"))
    out.append(_net_text_case("negative-std", 'layer { name: "gstd" type: "DummyData" top: "d" dummy_data_param '
                                              '{ shape { dim: 3 } data_filler { type: "gaussian" std: -1 } } }',
                              "error", "std"))
    return out


_INTS = ["0", "-1", "1", "2", "3", "7", "1000000", "2147483647", "-2147483648"]
_FLOATS = ["0", "-1", "0.5", "1", "2", "nan", "inf", "-inf", "1e30"]
_LAYER_PARAMS = {
    "Convolution": "convolution_param { num_output: I kernel_size: I stride: I pad: I dilation: I group: I }",
    "Deconvolution": "convolution_param { num_output: I kernel_size: I stride: I pad: I }",
    "Pooling": "pooling_param { pool: MAX kernel_size: I stride: I pad: I }",
    "LRN": "lrn_param { local_size: I alpha: F beta: F k: F }",
    "Dropout": "dropout_param { dropout_ratio: F }",
    "Reshape": "reshape_param { shape { dim: I dim: I } axis: I num_axes: I }",
    "Concat": "concat_param { axis: I }", "Slice": "slice_param { axis: I slice_point: I }",
    "Flatten": "flatten_param { axis: I end_axis: I }", "InnerProduct": "inner_product_param { num_output: I axis: I }",
    "Softmax": "softmax_param { axis: I }", "Power": "power_param { power: F scale: F shift: F }",
    "Exp": "exp_param { base: F scale: F shift: F }", "Log": "log_param { base: F scale: F shift: F }",
    "Scale": "scale_param { axis: I num_axes: I bias_term: true }", "Crop": "crop_param { axis: I offset: I }",
    "Tile": "tile_param { axis: I tiles: I }", "Embed": "embed_param { num_output: I input_dim: I }",
    "ArgMax": "argmax_param { top_k: I axis: I }", "Reduction": "reduction_param { axis: I coeff: F }",
    "BatchNorm": "batch_norm_param { eps: F moving_average_fraction: F }",
    "SoftmaxWithLoss": "loss_param { ignore_label: I } softmax_param { axis: I }",
    "Accuracy": "accuracy_param { top_k: I axis: I }", "Clip": "clip_param { min: F max: F }",
}
_TWO_BOTTOMS = {"Concat", "SoftmaxWithLoss", "Accuracy", "Crop", "Scale"}


def _layer_param_case(index: int, rnd: random.Random) -> Case:
    """A layer with random (often absurd) parameters, set up and run forward and backward."""
    kind = rnd.choice(sorted(_LAYER_PARAMS))
    words = [rnd.choice(_INTS) if w == "I" else rnd.choice(_FLOATS) if w == "F" else w
             for w in _LAYER_PARAMS[kind].split(" ")]
    dims = rnd.choice(["dim: 2 dim: 3 dim: 4 dim: 4", "dim: 2 dim: 3", "dim: 4", "dim: 2 dim: 1 dim: 5 dim: 5"])
    bottoms = 'bottom: "x" bottom: "z"' if kind in _TWO_BOTTOMS else 'bottom: "x"'
    text = (f'force_backward: true\nlayer {{ name: "in" type: "Input" top: "x" top: "z" '
            f'input_param {{ shape {{ {dims} }} }} }}\n'
            f'layer {{ name: "fuzzed_{kind}" type: "{kind}" {bottoms} top: "y" {" ".join(words)} }}')

    def run(folder: Path):
        import numpy
        net = _engine().Net(_net_file(folder, text))
        net.blobs["x"].data[...] = numpy.random.default_rng(index).random(net.blobs["x"].shape)
        net.forward()
        net.backward()
    return Case(f"layer-param-{index}", "error_or_ok", run, (f"'fuzzed_{kind}'",))


# ---------------------------------------------------------------------------
# solvers
# ---------------------------------------------------------------------------
def _solver_value_cases() -> list[Case]:
    refused = [("base_lr: -0.1", "base_lr"), ("base_lr: inf", "base_lr"), ("base_lr: nan", "base_lr"),
               ("momentum: -0.5", "momentum"), ("momentum: 1.5", "momentum"), ("weight_decay: -1", "weight_decay"),
               ("max_iter: -5", "max_iter"), ("snapshot: -1", "snapshot"), ("display: -1", "display"),
               ("test_iter: -1", "test_iter"), ("iter_size: 0", "iter_size"), ("iter_size: -2", "iter_size"),
               ("average_loss: 0", "average_loss"), ("average_loss: -3", "average_loss"),
               ('lr_policy: "step" stepsize: 0', "stepsize"), ('lr_policy: "poly" max_iter: 0', "poly"),
               ('lr_policy: "inv" gamma: -0.5 power: 0.75', "gamma"), ('lr_policy: "warmup"', "warmup"),
               ('type: "Adam" momentum: 1', "momentum"), ('type: "Adam" momentum2: 1', "momentum2"),
               ('type: "AdaDelta" momentum: 1', "momentum"), ('type: "RMSProp" rms_decay: 1', "rms_decay"),
               ('type: "Newton"', "Newton"), ('regularization_type: "L3"', "L3"), ("delta: -1", "delta"),
               ("clip_gradients: nan", "clip_gradients"), ("gamma: inf", "gamma")]
    out = []
    for k, (extra, field) in enumerate(refused):
        def run(folder: Path, extra=extra):
            text = SOLVER.format(net=_net_file(folder, MLP), prefix="snap/mlp")
            lines = [line for line in text.splitlines()
                     if line.split(":")[0] not in [e.split(":")[0].strip() for e in extra.split(" ")[::2]]]
            _engine().get_solver(_write(folder, "solver.prototxt", "\n".join(lines) + "\n" + extra + "\n"))
        out.append(Case(f"solver-value-{k}", "error", run, (field,)))
    warned = [("base_lr: 0", "base_lr"), ("clip_gradients: 0", "clip_gradients"),
              ('lr_policy: "multistep" stepvalue: 50 stepvalue: 10', "stepvalue"),  # legal in Caffe
              ('lr_policy: "multistep" stepvalue: 10 stepvalue: 10', "stepvalue")]
    for k, (extra, field) in enumerate(warned):
        def run_warned(folder: Path, extra=extra):
            text = SOLVER.format(net=_net_file(folder, MLP), prefix="snap/mlp")
            keys = [e.split(":")[0].strip() for e in extra.split(" ")[::2]]
            text = "\n".join(line for line in text.splitlines() if line.split(":")[0] not in keys)
            _engine().get_solver(_write(folder, "solver.prototxt", text + "\n" + extra + "\n"))
        out.append(Case(f"solver-warning-{k}", "warning", run_warned, (field,)))
    empty = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
    out.append(Case("solver-empty-net", "warning",
                    lambda d: _engine().get_solver(_solver_file(d, net_text=empty)), ("learnable",)))
    for target in ("/dev/zero", "/dev/urandom", "/proc/self/mem"):
        def net_field(folder: Path, target=target):
            _engine().get_solver(_write(folder, "solver.prototxt", f'net: "{target}"\nbase_lr: 0.1\n'))
        out.append(Case(f"solver-net-field-{target.replace('/', '_')}", "error", net_field, (target,)))
    out.append(Case("lr-inv-negative-base", "error", _inv_runtime, ("inv", "iteration")))
    out.append(Case("divergence-one-line", "error", _diverge, ("iteration", "NaN")))
    return out


def _inv_runtime(folder: Path) -> None:
    text = SOLVER.format(net=_net_file(folder, MLP), prefix="snap/mlp").replace("max_iter: 100", "max_iter: 1")
    text = text.replace('lr_policy: "fixed"', 'lr_policy: "inv" gamma: -0.5 power: 0.75')
    solver = _engine().get_solver(_write(folder, "solver.prototxt", text))
    solver.step(4)


def _diverge(folder: Path) -> None:
    """A run that diverges: NonFiniteError, and no numpy RuntimeWarning on the way (checked by the worker)."""
    text = SOLVER.format(net=_net_file(folder, MLP), prefix="snap/mlp").replace("base_lr: 0.1", "base_lr: 1e35")
    solver = _engine().get_solver(_write(folder, "solver.prototxt", text))
    solver.step(50)


def _snapshot_prefix_cases() -> list[Case]:
    def bad_prefix(prefix_of: Callable[[Path], str]):
        def run(folder: Path):
            solver = _engine().get_solver(_solver_file(folder, prefix=prefix_of(folder).replace("\0", "\\000")))
            solver.auto_snapshot = True
        return run

    def under_a_file(folder: Path) -> str:
        _write(folder, "plain.txt", "x")
        return str(folder / "plain.txt" / "sub" / "mlp")
    return [
        Case("prefix-proc", "error", bad_prefix(lambda d: "/proc/nonexistent/spiral"), ("/proc/nonexistent",)),
        Case("prefix-sys", "error", bad_prefix(lambda d: "/sys/spiral/x"), ("/sys/spiral",)),
        Case("prefix-under-file", "error", bad_prefix(under_a_file), ("plain.txt",)),
        Case("prefix-nul", "error", bad_prefix(lambda d: str(d / "a\0b")), ("snapshot_prefix",)),
        Case("prefix-api-snapshot", "error", _api_snapshot_to_proc, ("snapshot_prefix", "/proc")),
        Case("save-nul-path", "error", lambda d: _engine().Net(MLP).save(str(d / "w\0.caffemodel")), ("NUL",)),
    ]


def _api_snapshot_to_proc(folder: Path) -> None:
    solver = _engine().get_solver(_solver_file(folder, prefix="/proc/nonexistent/spiral"))
    solver.snapshot()


# ---------------------------------------------------------------------------
# weights and solver states
# ---------------------------------------------------------------------------
def _trained_files(folder: Path, fmt: str) -> dict:
    """A solver trained 3 iterations and its snapshot (weights and state, binary or HDF5)."""
    extra = "snapshot_format: HDF5\n" if fmt == "h5" else ""
    solver = _engine().get_solver(_solver_file(folder, extra))
    solver.step(3)
    model, state = solver.snapshot()
    return {"model": model, "state": state}


def _mutated_file_case(kind: str, fmt: str, index: int, rnd: random.Random) -> Case:
    seed = rnd.randrange(2**32)

    def run(folder: Path):
        files = _trained_files(folder, fmt)
        target = files[kind]
        data = Path(target).read_bytes()
        Path(target).write_bytes(_mutate_bytes(data, random.Random(seed)))
        fresh = _engine().get_solver(str(folder / "solver.prototxt"))
        if kind == "model":
            _all_or_nothing(fresh, lambda: fresh.net.copy_from(target))
        else:
            _all_or_nothing(fresh, lambda: fresh.restore(target))
    return Case(f"{kind}-{fmt}-mutation-{index}", "error_or_ok", run, ("{dir}",))


def _h5_edit(path: str, edit: Callable) -> None:
    import h5py
    with h5py.File(path, "r+") as handle:
        edit(handle)


def _state_edit_case(name: str, fmt: str, edit: Callable, *must_name: str, solver_extra: str = "",
                     other_net: str | None = None) -> Case:
    def run(folder: Path):
        files = _trained_files(folder, fmt)
        if fmt == "h5":
            _h5_edit(files["state"], lambda handle: edit(handle, folder, files))
        else:
            edit(None, folder, files)
        net_text = other_net if other_net is not None else MLP
        target_folder = folder / "resume"
        target_folder.mkdir()
        fresh = _engine().get_solver(_solver_file(target_folder, solver_extra, net_text=net_text))
        _all_or_nothing(fresh, lambda: fresh.restore(files["state"]))
    return Case(name, "error", run, must_name)


def _extras(handle):
    return handle["backprop_studio"]


def _set_cursor(value):
    def edit(handle, folder, files):
        entry = _extras(handle)["data_layers/train/0"]
        del entry["cursor"]
        entry.create_dataset("cursor", data=value)
    return edit


def _set_rng(text):
    def edit(handle, folder, files):
        _extras(handle).attrs["rng_state"] = text
    return edit


def _drop_layer_attr(handle, folder, files):
    del _extras(handle)["data_layers/train/0"].attrs["layer"]


def _learned_net_to_other(handle, folder, files):
    import numpy
    other = _engine().Net(INPUT + 'layer { name: "conv_x" type: "Convolution" bottom: "x" top: "y" '
                                  'convolution_param { num_output: 2 kernel_size: 1 } }')
    path = str(folder / "other.caffemodel.h5")
    other.save(path)
    del handle["learned_net"]
    raw = path.encode()
    handle.create_dataset("learned_net", data=numpy.array(raw + b"\0", dtype=f"S{len(raw) + 1}"))


def _state_cases() -> list[Case]:
    renamed = MLP.replace('"ip2"', '"fc2"')
    smaller = MLP.replace("num_points: 60", "num_points: 30")
    out = [
        _state_edit_case("state-renamed-layer-h5", "h5", lambda h, d, f: None, "fc2", other_net=renamed),
        _state_edit_case("state-renamed-layer-bin", "bin", lambda h, d, f: None, "fc2", other_net=renamed),
        _state_edit_case("state-learned-net-other", "h5", _learned_net_to_other, "other.caffemodel.h5"),
        _state_edit_case("state-cursor-beyond", "h5", _set_cursor(10**6), "'data'", "cursor"),
        _state_edit_case("state-cursor-negative", "h5", _set_cursor(-1), "'data'", "cursor"),
        _state_edit_case("state-cursor-text", "h5", _set_cursor("abc"), "'data'"),
        _state_edit_case("state-smaller-dataset-h5", "h5", lambda h, d, f: None, "'data'", other_net=smaller),
        _state_edit_case("state-smaller-dataset-bin", "bin", lambda h, d, f: None, "'data'", other_net=smaller),
        _state_edit_case("state-rng-garbage", "h5", _set_rng("{not json"), "rng_state"),
        _state_edit_case("state-rng-name", "h5", _set_rng('{"bit_generator": "os.system", "state": 1}'),
                         "random stream"),
        _state_edit_case("state-rng-bad-state", "h5", _set_rng('{"bit_generator": "PCG64", "state": 5}'),
                         "rng_state"),
        _state_edit_case("state-no-layer-attr", "h5", _drop_layer_attr, "data"),
        _state_edit_case("state-adam-into-sgd", "h5", lambda h, d, f: None, "history",
                         solver_extra='type: "Adam"\n'),
        _state_edit_case("state-negative-iter", "h5", _negative_iter, "iter"),
        _state_edit_case("state-history-group", "h5", _history_is_group, "history"),
        _state_edit_case("state-history-strings", "h5", _history_is_strings, "history"),
    ]
    return out


def _negative_iter(handle, folder, files):
    import numpy
    del handle["iter"]
    handle.create_dataset("iter", data=numpy.array([-4], dtype=numpy.int32))


def _history_is_group(handle, folder, files):
    del handle["history/0"]
    handle["history"].create_group("0")


def _history_is_strings(handle, folder, files):
    import h5py
    del handle["history/0"]
    handle["history"].create_dataset("0", data=["a", "b"], dtype=h5py.string_dtype())


def _weights_h5_edit_case(name: str, edit: Callable, expect: str, *must_name: str) -> Case:
    def run(folder: Path):
        net = _engine().Net(MLP)
        path = str(folder / "w.caffemodel.h5")
        net.save(path)
        _h5_edit(path, lambda handle: edit(handle, folder))
        fresh = _engine().Net(MLP)
        _all_or_nothing(fresh, lambda: fresh.copy_from(path))
    return Case(name, expect, run, must_name)


def _weights_cases() -> list[Case]:
    def nan_values(handle, folder):
        data = handle["data/ip2/0"][()]
        data[0, :2] = float("nan")
        data[1, 0] = float("inf")
        handle["data/ip2/0"][...] = data

    def soft_dangling(handle, folder):
        import h5py
        del handle["data/ip2/0"]
        handle["data/ip2"]["0"] = h5py.SoftLink("/nowhere")

    def external(handle, folder):
        import h5py
        del handle["data/ip2/0"]
        handle["data/ip2"]["0"] = h5py.ExternalLink(str(folder / "elsewhere.h5"), "/x")

    def group_for_dataset(handle, folder):
        del handle["data/ip2/0"]
        handle["data/ip2"].create_group("0")

    def vlen_strings(handle, folder):
        import h5py
        del handle["data/ip2/0"]
        handle["data/ip2"].create_dataset("0", data=["x"] * 3, dtype=h5py.string_dtype())

    def wrong_shape(handle, folder):
        del handle["data/ip2/0"]
        handle["data/ip2"].create_dataset("0", data=[[1.0, 2.0]])

    def ip3_mismatch(handle, folder):  # a later layer mismatched: the earlier ones must not be copied
        del handle["data/ip2/1"]
        handle["data/ip2"].create_dataset("1", data=[1.0, 2.0, 3.0, 4.0, 5.0])

    def no_data_group(handle, folder):
        del handle["data"]
        handle.create_dataset("data", data=[1, 2, 3])

    def nothing_matches(handle, folder):
        import numpy
        del handle["data"]
        group = handle.create_group("data/conv9")
        group.create_dataset("0", data=numpy.zeros((2, 2), numpy.float32))

    return [
        _weights_h5_edit_case("weights-nan", nan_values, "warning", "'ip2'", "blob 0", "3 non-finite"),
        _weights_h5_edit_case("weights-soft-link", soft_dangling, "error", "ip2"),
        _weights_h5_edit_case("weights-external-link", external, "error", "ip2", "external"),
        _weights_h5_edit_case("weights-group", group_for_dataset, "error", "ip2"),
        _weights_h5_edit_case("weights-vlen", vlen_strings, "error", "ip2"),
        _weights_h5_edit_case("weights-shape", wrong_shape, "error", "'ip2'"),
        _weights_h5_edit_case("weights-ip3-mismatch", ip3_mismatch, "error", "'ip2'"),
        _weights_h5_edit_case("weights-no-data-group", no_data_group, "error", "w.caffemodel.h5"),
        _weights_h5_edit_case("weights-nothing-matches", nothing_matches, "error", "conv9"),
        Case("weights-corrupt-header", "error", _corrupt_h5_header, ("w.caffemodel.h5",)),
        Case("weights-binary-nan", "warning", _binary_nan, ("'ip1'", "non-finite")),
    ]


def _corrupt_h5_header(folder: Path) -> None:
    net = _engine().Net(MLP)
    path = folder / "w.caffemodel.h5"
    net.save(str(path))
    data = bytearray(path.read_bytes())
    data[8:40] = b"\xff" * 32  # superblock fields after the signature
    path.write_bytes(bytes(data))
    fresh = _engine().Net(MLP)
    _all_or_nothing(fresh, lambda: fresh.copy_from(str(path)))


def _binary_nan(folder: Path) -> None:
    import numpy
    net = _engine().Net(MLP)
    net.params["ip1"][0].data[0, 0] = numpy.nan
    path = str(folder / "w.caffemodel")
    net.save(path)
    _engine().Net(MLP).copy_from(path)


# ---------------------------------------------------------------------------
# HDF5 data
# ---------------------------------------------------------------------------
def _h5_net(folder: Path, source: str) -> str:
    return (f'layer {{ name: "h5data" type: "HDF5Data" top: "data" top: "label" '
            f'hdf5_data_param {{ source: "{source}" batch_size: 4 }} }}')


def _h5_data_case(name: str, make: Callable, expect: str, *must_name: str, list_name: str = "list.txt") -> Case:
    def run(folder: Path):
        import h5py
        path = folder / "my data.h5"
        with h5py.File(path, "w") as handle:
            make(handle, folder)
        source = _write(folder, list_name, f"{path}\n")
        _engine().Net(_h5_net(folder, source)).forward()
    return Case(name, expect, run, must_name)


def _h5_data_cases() -> list[Case]:
    def good(handle, folder):
        handle["data"] = [[1.0, 2.0]] * 5
        handle["label"] = [0.0] * 5

    def huge_declared(handle, folder):
        handle.create_dataset("data", shape=(2**28, 4), dtype="f8", chunks=(1024, 4))
        handle.create_dataset("label", shape=(2**28,), dtype="f4", chunks=(1024,))

    def huge_compressed(handle, folder):
        handle.create_dataset("data", shape=(2**26, 64), dtype="f4", chunks=(4096, 64), compression="gzip")
        handle.create_dataset("label", shape=(2**26,), dtype="f4", chunks=(4096,), compression="gzip")

    def soft_dangling(handle, folder):
        import h5py
        handle["label"] = [0.0] * 5
        handle["data"] = h5py.SoftLink("/nowhere")

    def soft_ok(handle, folder):
        import h5py
        handle["real"] = [[1.0, 2.0]] * 5
        handle["label"] = [0.0] * 5
        handle["data"] = h5py.SoftLink("/real")

    def external(handle, folder):
        import h5py
        handle["label"] = [0.0] * 5
        handle["data"] = h5py.ExternalLink("/etc/passwd", "/x")

    def group(handle, folder):
        handle["label"] = [0.0] * 5
        handle.create_group("data")

    def vlen(handle, folder):
        import h5py
        handle["label"] = [0.0] * 5
        handle.create_dataset("data", data=["a", "b"], dtype=h5py.string_dtype())

    def scalar(handle, folder):
        handle["label"] = [0.0] * 5
        handle["data"] = 3.0

    def rows_differ(handle, folder):
        handle["data"] = [[1.0, 2.0]] * 5
        handle["label"] = [0.0] * 4

    def empty(handle, folder):
        handle.create_dataset("data", shape=(0, 2), dtype="f4")
        handle.create_dataset("label", shape=(0,), dtype="f4")

    def missing_label(handle, folder):
        handle["data"] = [[1.0, 2.0]] * 5

    def compound(handle, folder):
        import numpy
        handle["label"] = [0.0] * 5
        handle["data"] = numpy.zeros(5, dtype=[("a", "f4"), ("b", "i4")])

    return [
        _h5_data_case("h5-name-with-space", good, "error_or_ok"),
        _h5_data_case("h5-huge-declared", huge_declared, "error", "my data.h5", "data"),
        _h5_data_case("h5-huge-chunked-gzip", huge_compressed, "error", "my data.h5", "data"),
        _h5_data_case("h5-soft-dangling", soft_dangling, "error", "my data.h5", "data"),
        _h5_data_case("h5-soft-ok", soft_ok, "error_or_ok"),
        _h5_data_case("h5-external", external, "error", "my data.h5", "external"),
        _h5_data_case("h5-group", group, "error", "my data.h5", "group"),
        _h5_data_case("h5-vlen", vlen, "error", "my data.h5", "data"),
        _h5_data_case("h5-scalar", scalar, "error", "my data.h5", "data"),
        _h5_data_case("h5-rows-differ", rows_differ, "error", "my data.h5", "label"),
        _h5_data_case("h5-empty", empty, "error", "my data.h5"),
        _h5_data_case("h5-missing-label", missing_label, "error", "my data.h5", "label"),
        _h5_data_case("h5-compound", compound, "error", "my data.h5", "data"),
        Case("h5-corrupt", "error", _h5_corrupt, ("my data.h5",)),
        Case("h5-source-list-latin1", "error", _h5_list_non_utf8, ("list.txt",)),
        Case("h5-source-list-blank", "error", _h5_list_empty, ("list.txt",)),
    ]


def _h5_corrupt(folder: Path) -> None:
    path = folder / "my data.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    _engine().Net(_h5_net(folder, _write(folder, "list.txt", f"{path}\n")))


def _h5_list_non_utf8(folder: Path) -> None:
    _engine().Net(_h5_net(folder, _write(folder, "list.txt", b"caf\xe9.h5\n")))


def _h5_list_empty(folder: Path) -> None:
    _engine().Net(_h5_net(folder, _write(folder, "list.txt", "\n  \n")))


# ---------------------------------------------------------------------------
# the catalogue
# ---------------------------------------------------------------------------
def cases(seed: int = 15) -> list[Case]:
    """Every case, in a fixed order for ``seed``."""
    rnd = random.Random(seed)
    out: list[Case] = []
    out += [_mutated_net_case(k, rnd) for k in range(120)]
    out += _huge_cases(rnd)
    out += _in_place_cases()
    out += _builtin_cases()
    out += _special_file_cases()
    out += _filler_cases()
    out += _solver_value_cases()
    out += _snapshot_prefix_cases()
    out += _weights_cases()
    out += _state_cases()
    out += _h5_data_cases()
    out += [_layer_param_case(k, rnd) for k in range(80)]
    for k in range(24):
        out.append(_mutated_file_case(rnd.choice(["model", "state"]), rnd.choice(["bin", "h5"]), k, rnd))
    return out


# ---------------------------------------------------------------------------
# the worker
# ---------------------------------------------------------------------------
class CaseTimeout(BaseException):
    """A case ran past CASE_SECONDS."""


def _on_alarm(signum, frame):
    raise CaseTimeout()


def _limit_address_space() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        used = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = used + EXTRA_ADDRESS_SPACE
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return cap


def run_case(case: Case, folder: Path) -> dict:
    """Run one case; the outcome as a JSON-able dict."""
    from engine.errors import EngineError, EngineWarning
    folder.mkdir(parents=True, exist_ok=True)
    result: dict = {"name": case.name, "dir": str(folder)}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
        try:
            case.run(folder)
            result["outcome"] = "ok"
        except CaseTimeout:
            result.update(outcome="timeout", message=f"ran past {CASE_SECONDS} s")
        except EngineError as exc:
            result.update(outcome="error", type=type(exc).__name__, message=str(exc))
        except BaseException as exc:  # anything else is a failure of the engine (or a partial load)
            result.update(outcome="raw", type=type(exc).__name__, message=str(exc),
                          where=traceback.format_exc(limit=-3))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    result["seconds"] = round(time.perf_counter() - start, 3)
    result["warnings"] = [str(w.message) for w in caught if issubclass(w.category, EngineWarning)]
    result["other_warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught
                                if not issubclass(w.category, EngineWarning)]
    return result


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    os.chdir(folder)  # relative snapshot prefixes and files stay in the scratch folder
    import h5py  # noqa: F401

    import engine  # noqa: F401 - everything imported before the cap
    cap = _limit_address_space()
    signal.signal(signal.SIGALRM, _on_alarm)
    for k, case in enumerate(cases()):
        result = run_case(case, folder / f"case{k:03d}")
        print(json.dumps(result), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"name": "__summary__", "cap": cap, "peak_rss": peak}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
