"""``python -m engine`` / ``backprop-studio-cli``: the ``caffe`` tool's commands.

    train     --solver S [--weights W | --snapshot SS] [--gpu] [--iterations N] [--stage S] [--level L]
    test      --model M --weights W [--iterations N] [--stage S] [--level L]
    time      --model M [--iterations N]
    gradcheck --model M [--layer NAME ...] [--threshold T]
    (train, test, time, gradcheck: --allow-python-layers DIR runs the Python layers whose module is in DIR)
    convert   --data X.npy --labels Y.npy --output OUT.h5|OUT.lmdb [--backend B] [--list LIST.txt]
    convert_imageset ROOT LIST DB [--resize_height H --resize_width W --gray --shuffle
                     --backend lmdb|leveldb --encoded --encode_type png|jpg]
    compute_image_mean DB [MEAN.binaryproto] [--backend lmdb|leveldb]
    upgrade   IN OUT   (an old net or solver prototxt, or a .caffemodel, in today's format)

Logs follow Caffe's wording (``Iteration 100, loss = 0.12``) on stdout, and so
do warnings (``warning: ...``: NaN weights loaded, lr 0). Exit code 0 on
success; on an error one line on stderr and a non-zero code (1; 2 for bad
arguments; 130 after Ctrl-C or SIGTERM, which in ``train`` finish the
iteration and write a snapshot first; ``test`` exits 1 when an output is NaN or
infinite); ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import time as _time
import warnings

import numpy

PROG = "backprop-studio-cli"
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """Bad command-line arguments (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line instead of printing usage."""

    def error(self, message):  # noqa: D401 - argparse API
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _fmt(value: float) -> str:
    """A number as Caffe's log prints it (C++ stream default: 6 significant digits)."""
    return f"{value:.6g}"


class Console:
    """Log lines on stdout, with a progress bar kept on the last line of a terminal."""

    def __init__(self, stream=None, progress: bool | None = None):
        self.stream = stream or sys.stdout
        if progress is None:
            isatty = getattr(self.stream, "isatty", None)
            progress = bool(isatty and isatty())
        self.progress = progress
        self._bar_shown = False
        self._last_draw = float("-inf")

    def log(self, text: str = "") -> None:
        self._clear_bar()
        self.stream.write(text + "\n")
        self.stream.flush()

    def bar(self, done: int, total: int, loss: float) -> None:
        """Redraw the bar (at most ten times a second, and always at the end)."""
        if not self.progress:
            return
        now = _time.monotonic()
        if done < total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        width = 30
        filled = int(width * done / total) if total else width
        self.stream.write(f"\r[{'=' * filled}{' ' * (width - filled)}] {done}/{total}  loss {_fmt(loss)}")
        self.stream.flush()
        self._bar_shown = True

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self._bar_shown = False

    def finish(self) -> None:
        self._clear_bar()
        self.stream.flush()


# ---------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------
def _use_device(args) -> str:
    """'gpu' when --gpu was given (DeviceError without CUDA), else 'cpu'."""
    from . import backend
    if args.gpu is None:
        return "cpu"
    if args.gpu not in ("all",) and not str(args.gpu).isdigit():
        raise UsageError(f"{PROG}: --gpu takes a device number or 'all', not '{args.gpu}'")
    backend.cupy_module()
    if str(args.gpu).isdigit():
        backend.cupy_module().cuda.Device(int(args.gpu)).use()
    backend.set_mode_gpu()
    return "gpu"


def _python_layers(args) -> tuple[str, ...]:
    """The folders --allow-python-layers allowed (engine.python_layers)."""
    from .python_layers import folders_of
    return folders_of(args.allow_python_layers)


def _phase(name: str) -> int:
    from .net import TEST, TRAIN
    return TRAIN if name == "TRAIN" else TEST


def _output_lines(net, outputs: dict[str, float], label: str) -> list[str]:
    """``<label> #j: name = value`` with Caffe's `` (* w = x loss)`` for weighted outputs."""
    lines = []
    for j, (name, value) in enumerate(outputs.items()):
        weight = _loss_weight(net, name)
        suffix = f" (* {_fmt(weight)} = {_fmt(weight * value)} loss)" if weight else ""
        lines.append(f"{label} #{j}: {name} = {_fmt(value)}{suffix}")
    return lines


def _loss_weight(net, blob_name: str) -> float:
    for i, tops in enumerate(net.top_names):
        if blob_name in tops:
            weight = net.loss_weights_of(i)[tops.index(blob_name)]
            if weight:
                return weight
    return 0.0


def _mean_outputs(net) -> dict[str, float]:
    return {name: net.blobs[name].data.sum().item() / max(1, net.blobs[name].data.size)
            if net.blobs[name].data.size > 1 else net.blobs[name].data.sum().item()
            for name in net.outputs}


def _load_weights(net, paths: str, console: Console) -> None:
    for path in paths.split(","):
        report = net.copy_from(path)
        for line in report.lines():
            console.log(line)


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------
class _SigintFlag:
    """First Ctrl-C (or SIGTERM): finish the iteration, snapshot, stop. Second: stop now."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.raised = False
        self.signal_name = "interrupted"
        self._previous: dict = {}

    def __enter__(self):
        for number in self.SIGNALS:
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: leave the signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True
        self.signal_name = "terminated" if signum == signal.SIGTERM else "interrupted"

    def __exit__(self, *exc):
        for number, previous in self._previous.items():
            signal.signal(number, previous)


def _log_tests(console: Console, solver, scores: dict[str, float], iteration: int) -> None:
    for k, net in enumerate(solver.test_nets):
        console.log(f"Iteration {iteration}, Testing net (#{k})")
        prefix = "" if len(solver.test_nets) == 1 else f"test{k}/"
        outputs = {name[len(prefix):]: value for name, value in scores.items() if name.startswith(prefix)}
        for line in _output_lines(net, outputs, "    Test net output"):
            console.log(line)


def _log_snapshot(console: Console, solver, paths: list[str]) -> None:
    hdf5 = paths[0].endswith(".h5")
    kind = "HDF5 file" if hdf5 else "binary proto file"
    console.log(f"Snapshotting to {kind} {paths[0]}")
    console.log(f"Snapshotting solver state to {kind} {paths[1]}")


def _train_iteration(console: Console, solver, pending: list) -> None:
    """One solver step, then its log lines in Caffe's order."""
    iteration = solver.iter
    tests_before = len(solver.test_scores)
    solver.step(1)
    for scored_at, scores in solver.test_scores[tests_before:]:
        _log_tests(console, solver, scores, scored_at)
    display = solver.param.display
    if display and iteration % display == 0:
        console.log(f"Iteration {iteration}, loss = {_fmt(solver.smoothed_loss)}")
        outputs = {name: solver.net.blobs[name].data.reshape(-1)[0].item() for name in solver.net.outputs
                   if solver.net.blobs[name].data.size == 1}
        for line in _output_lines(solver.net, outputs, "    Train net output"):
            console.log(line)
        console.log(f"Iteration {iteration}, lr = {_fmt(solver.learning_rate)}")
    for paths in pending:
        _log_snapshot(console, solver, paths)
    pending.clear()


def _finish_training(console: Console, solver, pending: list) -> None:
    """What Caffe's Solve does after the last step."""
    if solver.should_snapshot_after_train():
        solver.snapshot()
    for paths in pending:
        _log_snapshot(console, solver, paths)
    pending.clear()
    display = solver.param.display
    if display and solver.iter % display == 0:
        solver.net.forward()
        solver._update_smoothed_loss(solver.net.loss)
        console.log(f"Iteration {solver.iter}, loss = {_fmt(solver.smoothed_loss)}")
    if solver.test_nets and solver.param.test_interval and solver.iter % solver.param.test_interval == 0:
        _log_tests(console, solver, solver.test_all(), solver.iter)
    console.log("Optimization Done.")


def cmd_train(args, console: Console) -> int:
    from .solver import get_solver
    if args.weights and args.snapshot:
        raise UsageError(f"{PROG} train: give either --weights or --snapshot, not both")
    if args.iterations is not None and args.iterations < 0:
        raise UsageError(f"{PROG} train: --iterations must be >= 0")
    device = _use_device(args)
    from .prototxt import parse_solver
    param, path = parse_solver(args.solver)
    param.train_state.stage.extend(_stages(args))  # as caffe train -stage / -level: into train_state
    if args.level is not None:
        param.train_state.level = args.level
    if args.weights or args.snapshot:  # as caffe train: the command line's weights replace the solver's
        del param.weights[:]
    solver = get_solver(param, device=device, path=path, python_layers=_python_layers(args))
    if args.iterations is not None:
        solver.param.max_iter = args.iterations
    solver.auto_snapshot = True
    pending: list[list[str]] = []
    solver.on_snapshot = pending.append
    console.log(f"Solving {solver.net.name}")
    console.log(f"Learning Rate Policy: {solver.param.lr_policy or 'fixed'}")
    from .snapshot_location import relocation_note
    note = relocation_note(solver)
    if note:
        console.log(note)
    if args.snapshot:
        console.log(f"Resuming from {args.snapshot}")
        for line in solver.restore(args.snapshot).lines():
            console.log(line)
    elif args.weights:
        console.log(f"Finetuning from {args.weights}")
        _load_weights(solver.net, args.weights, console)
        for net in solver.test_nets:  # as Caffe's CopyLayers: test nets too (layers only they have)
            for path in args.weights.split(","):
                net.copy_from(path)
    max_iter = solver.param.max_iter
    with _SigintFlag() as sigint:
        while solver.iter < max_iter and not sigint.raised:
            _train_iteration(console, solver, pending)
            console.bar(solver.iter, max_iter, solver.smoothed_loss)
        if sigint.raised:
            paths = solver.snapshot()
            for written in pending:
                _log_snapshot(console, solver, written)
            console.finish()
            print(f"{PROG}: {sigint.signal_name} at iteration {solver.iter}; snapshot written to {paths[1]}",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        _finish_training(console, solver, pending)
    console.finish()
    return 0


# ---------------------------------------------------------------------------
# test
# ---------------------------------------------------------------------------
def cmd_test(args, console: Console) -> int:
    from .net import Net
    if args.iterations <= 0:
        raise UsageError(f"{PROG} test: --iterations must be > 0")
    device = _use_device(args)
    net = Net(args.model, _phase(args.phase), level=args.level, stages=_stages(args), device=device,
              python_layers=_python_layers(args))
    _load_weights(net, args.weights, console)
    console.log(f"Running for {args.iterations} iterations.")
    totals: dict[str, float] = {}
    loss = 0.0
    for i in range(args.iterations):
        net.forward()
        loss += net.loss
        for name, value in _mean_outputs(net).items():
            totals[name] = totals.get(name, 0.0) + value
            console.log(f"Batch {i}, {name} = {_fmt(value)}")
    console.log(f"Loss: {_fmt(loss / args.iterations)}")
    means = {name: total / args.iterations for name, total in totals.items()}
    for line in _output_lines(net, means, "Test net output"):
        console.log(line.split(": ", 1)[1])
    bad = [name for name, value in means.items() if not math.isfinite(value)]
    if not math.isfinite(loss) or bad:
        console.finish()
        print(f"{PROG}: test of '{args.model}' with weights '{args.weights}' gave non-finite output(s): "
              f"{', '.join(bad or ['loss'])} (NaN/inf in the weights or a divergence)", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _stages(args) -> list[str]:
    """--stage values, each possibly comma-separated as the caffe tool takes them."""
    return [stage for value in (args.stage or []) for stage in value.split(",") if stage]


# ---------------------------------------------------------------------------
# upgrade
# ---------------------------------------------------------------------------
def cmd_upgrade(args, console: Console) -> int:
    from .upgrade import upgrade_file
    kind, changed = upgrade_file(args.input, args.output)
    if not changed:
        console.log(f"File already in latest proto format: {args.input}")
    console.log(f"Wrote upgraded {kind} to {args.output}")
    return 0


# ---------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------
def cmd_time(args, console: Console) -> int:
    from .net import Net
    if args.iterations <= 0:
        raise UsageError(f"{PROG} time: --iterations must be > 0")
    device = _use_device(args)
    net = Net(args.model, _phase(args.phase), device=device, python_layers=_python_layers(args))
    sync = _synchronizer(device)
    console.log("Performing Forward")
    net.forward()
    console.log(f"Initial loss: {_fmt(net.loss)}")
    console.log("Performing Backward")
    net.backward()
    n = len(net.layers)
    forward_ms, backward_ms = [0.0] * n, [0.0] * n
    console.log("*** Benchmark begins ***")
    console.log(f"Testing for {args.iterations} iterations.")
    total_start = _time.perf_counter()
    for iteration in range(args.iterations):
        start = _time.perf_counter()
        for i in range(n):
            forward_ms[i] += _timed(lambda i=i: net.forward_layer(i), sync)
        for i in reversed(range(n)):
            backward_ms[i] += _timed(lambda i=i: net.backward_layer(i), sync)
        console.log(f"Iteration: {iteration + 1} forward-backward time: "
                    f"{_fmt((_time.perf_counter() - start) * 1000)} ms.")
    total_ms = (_time.perf_counter() - total_start) * 1000
    console.log("Average time per layer: ")
    width = max(10, max((len(layer.name) for layer in net.layers), default=0))
    for i, layer in enumerate(net.layers):
        console.log(f"{layer.name:>{width}}\tforward: {_fmt(forward_ms[i] / args.iterations)} ms.")
        console.log(f"{layer.name:>{width}}\tbackward: {_fmt(backward_ms[i] / args.iterations)} ms.")
    forward_total, backward_total = sum(forward_ms), sum(backward_ms)
    console.log(f"Average Forward pass: {_fmt(forward_total / args.iterations)} ms.")
    console.log(f"Average Backward pass: {_fmt(backward_total / args.iterations)} ms.")
    console.log(f"Average Forward-Backward: {_fmt(total_ms / args.iterations)} ms.")
    console.log(f"Total Time: {_fmt(total_ms)} ms.")
    console.log("*** Benchmark ends ***")
    return 0


def _synchronizer(device: str):
    if device != "gpu":
        return lambda: None
    from . import backend
    cupy = backend.cupy_module()
    return lambda: cupy.cuda.Device().synchronize()


def _timed(work, sync) -> float:
    sync()
    start = _time.perf_counter()
    work()
    sync()
    return (_time.perf_counter() - start) * 1000


# ---------------------------------------------------------------------------
# gradcheck
# ---------------------------------------------------------------------------
def cmd_gradcheck(args, console: Console) -> int:
    from .gradcheck import check_net
    from .net import Net
    net = Net(args.model, _phase(args.phase), python_layers=_python_layers(args))
    if args.weights:
        _load_weights(net, args.weights, console)
    names = [layer.name for layer in net.layers]
    for name in args.layer or []:
        if name not in names:
            raise UsageError(f"{PROG} gradcheck: no layer named '{name}' (layers: {', '.join(names)})")
        if not net.layer_need_backward[names.index(name)]:
            raise UsageError(f"{PROG} gradcheck: layer '{name}' runs no backward pass, nothing to check")
    net.forward()
    results = check_net(net, args.layer or None, threshold=args.threshold, max_elements=args.max_elements)
    failed = []
    for _layer_name, result in results.items():
        for blob in result.blobs:
            verdict = "ok" if blob.passed else "FAIL"
            console.log(f"{blob.name:30s} worst relative error {blob.worst_error:.3e} "
                        f"({blob.checked} checked, {blob.skipped} skipped) {verdict}")
            if not blob.passed:
                failed.append(blob)
    if not results:
        console.log("no layer runs a backward pass: nothing to check")
    if failed:
        worst = max(failed, key=lambda b: b.worst_error)
        print(f"{PROG}: gradient check failed: {len(failed)} blob(s) above threshold {args.threshold:g} "
              f"(worst {worst.name}: {worst.worst_error:.3e})", file=sys.stderr)
        return EXIT_ERROR
    console.log(f"All {sum(len(r.blobs) for r in results.values())} blob(s) within threshold {args.threshold:g}")
    return 0


# ---------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------
def cmd_convert(args, console: Console) -> int:
    from . import tools
    from .validate import check_input_file
    for path in (args.data, args.labels):
        check_input_file(path, "array file")  # not a FIFO or a device (reading one never ends)
    data = tools.load_array(args.data)
    labels = tools.load_array(args.labels)
    backend = args.backend or tools.backend_for_output(args.output)
    if backend != "hdf5":
        if args.list or args.compress:
            raise UsageError(f"{PROG} convert: --list and --compress are for HDF5 output, not {backend}")
        count = tools.to_lmdb(data, labels, args.output, backend=backend)
        console.log(f"Wrote {count} Datums to the {backend.upper()} database {args.output} (rows of shape "
                    f"{tuple(data.shape[1:])}, {'bytes' if data.dtype.name == 'uint8' else 'float_data'}): "
                    f"use it as data_param {{ source: ... backend: {backend.upper()} }}")
        return 0
    path = tools.to_hdf5(data, labels, args.output, compression="gzip" if args.compress else None)
    console.log(f"Wrote {data.shape[0]} rows to {path} (datasets 'data' {tuple(data.shape)}, "
                f"'label' ({labels.reshape(-1).shape[0]},))")
    if args.list:
        tools.write_source_list([path], args.list)
        console.log(f"Wrote the source list {args.list}: use it as hdf5_data_param {{ source: ... }}")
    return 0


# ---------------------------------------------------------------------------
# convert_imageset, compute_image_mean (Caffe's data tools)
# ---------------------------------------------------------------------------
def cmd_convert_imageset(args, console: Console) -> int:
    from . import datatools
    start = _time.perf_counter()
    count = datatools.convert_imageset(
        args.root, args.list, args.db, resize_height=args.resize_height, resize_width=args.resize_width,
        gray=args.gray, shuffle=args.shuffle, backend=args.backend, encoded=args.encoded,
        encode_type=args.encode_type, check_size=args.check_size, seed=args.seed, log=console.log)
    console.log(f"Wrote {count} Datums to {args.db} ({args.backend}) in "
                f"{_fmt(_time.perf_counter() - start)} s")
    return 0


def cmd_compute_image_mean(args, console: Console) -> int:
    from . import datatools
    datatools.compute_image_mean(args.db, args.output, backend=args.backend, log=console.log)
    if args.output:
        console.log(f"Wrote the mean to {args.output}: use it as transform_param {{ mean_file: ... }}")
    return 0


# ---------------------------------------------------------------------------
# parser and entry point
# ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Train, test, time and gradient-check Caffe nets "
                     "(the caffe tool's commands).")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def gpu(sub):
        sub.add_argument("--gpu", nargs="?", const="0", default=None, metavar="ID",
                         help="run on the GPU (device number or 'all'; needs cupy and CUDA)")

    def python_layers(sub):  # consent: a net's Python layers run only from the folders named here
        sub.add_argument("--allow-python-layers", action="append", default=[], metavar="DIR",
                         dest="allow_python_layers",
                         help="run the Python layers (type: \"Python\") whose module is in DIR (repeatable)")

    def net_state(sub):  # the caffe tool's -stage / -level
        sub.add_argument("--stage", action="append", default=[], metavar="STAGE",
                         help="net stage for include/exclude rules (repeatable, or comma-separated)")
        sub.add_argument("--level", type=int, default=None, help="net level for include/exclude rules")

    train = commands.add_parser("train", help="train a net from a solver prototxt")
    train.add_argument("--solver", required=True, help="solver prototxt")
    train.add_argument("--weights", help="start from these weights (.caffemodel[.h5]; comma-separated list)")
    train.add_argument("--snapshot", help="resume from this .solverstate[.h5]")
    train.add_argument("--iterations", type=int, help="train to this iteration (overrides max_iter)")
    gpu(train)
    net_state(train)
    python_layers(train)
    train.set_defaults(func=cmd_train)

    test = commands.add_parser("test", help="score a trained net: mean of each output")
    test.add_argument("--model", required=True, help="net prototxt")
    test.add_argument("--weights", required=True, help="trained weights (.caffemodel[.h5])")
    test.add_argument("--iterations", type=int, default=50, help="batches to run (default 50)")
    test.add_argument("--phase", choices=("TRAIN", "TEST"), default="TEST")
    gpu(test)
    net_state(test)
    python_layers(test)
    test.set_defaults(func=cmd_test)

    timing = commands.add_parser("time", help="per-layer forward/backward time")
    timing.add_argument("--model", required=True, help="net prototxt")
    timing.add_argument("--iterations", type=int, default=50, help="iterations to time (default 50)")
    timing.add_argument("--phase", choices=("TRAIN", "TEST"), default="TRAIN")
    gpu(timing)
    python_layers(timing)
    timing.set_defaults(func=cmd_time)

    check = commands.add_parser("gradcheck", help="compare every layer's backward with finite differences")
    check.add_argument("--model", required=True, help="net prototxt")
    check.add_argument("--layer", action="append", help="check only this layer (repeatable)")
    check.add_argument("--weights", help="weights to check at (default: the fillers')")
    check.add_argument("--threshold", type=float, default=1e-5, help="relative error allowed (default 1e-5)")
    check.add_argument("--max-elements", type=int, default=64, dest="max_elements",
                       help="elements sampled per blob (default 64)")
    check.add_argument("--phase", choices=("TRAIN", "TEST"), default="TRAIN")
    python_layers(check)
    check.set_defaults(func=cmd_gradcheck)

    convert = commands.add_parser("convert", help="numpy arrays (.npy) to an HDF5Data file or an LMDB")
    convert.add_argument("--data", required=True, help="N x ... array (.npy, or .npz with one array)")
    convert.add_argument("--labels", required=True, help="N labels (.npy)")
    convert.add_argument("--output", required=True,
                         help="the .h5 file, or the database folder (.lmdb / .leveldb, or with --backend)")
    convert.add_argument("--backend", choices=("hdf5", "lmdb", "leveldb"),
                         help="output format (default: from the name; .h5 otherwise)")
    convert.add_argument("--list", help="also write this source list naming the .h5 file")
    convert.add_argument("--compress", action="store_true", help="gzip the datasets")
    convert.set_defaults(func=cmd_convert)

    def flag(sub, name, **kwargs):  # Caffe's tools take -name=value and --name=value
        sub.add_argument(f"-{name}", f"--{name}", dest=name, **kwargs)

    imageset = commands.add_parser("convert_imageset", help="images + a 'path label' list to an LMDB/LevelDB "
                                   "of Datums (Caffe's convert_imageset)")
    imageset.add_argument("root", help="folder the list's paths are relative to (prefixed as is)")
    imageset.add_argument("list", help="list file: one 'path label' per line")
    imageset.add_argument("db", help="the database folder to create (must not exist)")
    flag(imageset, "resize_height", type=int, default=0, help="resize to this height (with resize_width)")
    flag(imageset, "resize_width", type=int, default=0, help="resize to this width (with resize_height)")
    flag(imageset, "gray", action="store_true", help="store grey images (default: colour, BGR)")
    flag(imageset, "shuffle", action="store_true", help="shuffle the list's order")
    flag(imageset, "seed", type=int, default=None, help="random seed of --shuffle (default: random)")
    flag(imageset, "backend", choices=("lmdb", "leveldb"), default="lmdb", help="database type (default lmdb)")
    flag(imageset, "encoded", action="store_true", help="store the encoded image (PNG/JPEG bytes)")
    flag(imageset, "encode_type", default="", help="encode as png or jpg (implies --encoded)")
    flag(imageset, "check_size", action="store_true", help="check that all images have one size")
    imageset.set_defaults(func=cmd_convert_imageset)

    mean = commands.add_parser("compute_image_mean", help="the mean image of a database, as a .binaryproto "
                               "(Caffe's compute_image_mean)")
    mean.add_argument("db", help="LMDB/LevelDB of Datums")
    mean.add_argument("output", nargs="?", help="the mean file to write (.binaryproto)")
    flag(mean, "backend", choices=("lmdb", "leveldb"), default="lmdb", help="database type (default lmdb)")
    mean.set_defaults(func=cmd_compute_image_mean)

    upgrade = commands.add_parser("upgrade", help="rewrite an old-format net or solver as today's Caffe "
                                  "(upgrade_net_proto_text / upgrade_solver_proto_text)")
    upgrade.add_argument("input", help="net or solver prototxt (or a binary .caffemodel)")
    upgrade.add_argument("output", help="where to write the upgraded file")
    upgrade.set_defaults(func=cmd_upgrade)
    return parser


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {' '.join(str(message).split())}", flush=True)  # a log line: stderr is for the failure


def _one_line(exc: BaseException) -> str:
    from .errors import EngineError
    if isinstance(exc, (EngineError, UsageError)):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(_one_line(exc), file=sys.stderr)
        return EXIT_USAGE
    console = Console()
    try:
        with warnings.catch_warnings(), numpy.errstate(all="ignore"):  # a divergence: reported once
            warnings.showwarning = _warning_line  # a warning is one log line
            return args.func(args, console)
    except UsageError as exc:
        console.finish()
        print(_one_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.finish()
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # every error: one line, unless --debug
        console.finish()
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
