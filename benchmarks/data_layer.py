"""Caffe's data path: images per second delivered into the blob by a ``Data``
layer over an LMDB, and written by ``convert_imageset``.

* ``Data`` over an LMDB of MNIST-shaped records (28 x 28 grey, raw bytes),
  batch 64, ``transform_param { scale: 0.00390625 mean_file: ... }`` (the mean
  made by ``compute_image_mean``): ``net.forward()`` of a net holding only the
  Data layer, timed per batch. Target >= 20,000 images/s with the default
  prefetch thread; the synchronous figure (``prefetch: 0``: reading, decoding
  and transforming inside ``forward``) is printed too.
* ``convert_imageset`` of 28 x 28 grey PNG files (raw Datums, and ``--encoded``):
  target >= 2,000 images/s.

Run: ``python -m benchmarks.data_layer`` (``--quick`` for fewer rounds,
``--json FILE`` to hand the result rows to ``python -m benchmarks``).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Callable

import numpy

if __package__ in (None, ""):  # run as a file: make ``benchmarks`` and ``engine`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import engine  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.common import Result  # noqa: E402
from engine import datatools, tools  # noqa: E402

BATCH = 64
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mnist_like(count: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    gen = numpy.random.default_rng(0)
    return gen.integers(0, 256, (count, 1, 28, 28), dtype=numpy.uint8), gen.integers(0, 10, count)


def data_net(source: str, mean_file: str, prefetch: int) -> engine.Net:
    return engine.Net(f"""
    layer {{ name: "mnist" type: "Data" top: "data" top: "label"
      transform_param {{ scale: 0.00390625 mean_file: "{mean_file}" }}
      data_param {{ source: "{source}" batch_size: {BATCH} backend: LMDB prefetch: {prefetch} }} }}""",
                      engine.TRAIN)


def bench_data_layer(folder: str, quick: bool) -> list[Result]:
    images, labels = mnist_like(5000 if quick else 20000)
    source = os.path.join(folder, "train_lmdb")
    tools.to_lmdb(images, labels, source)
    mean_file = os.path.join(folder, "mean.binaryproto")
    datatools.compute_image_mean(source, mean_file)
    nets = {"prefetch thread (default)": data_net(source, mean_file, 4),
            "prefetch: 0 (read in forward)": data_net(source, mean_file, 0)}
    contenders: dict[str, Callable[[], object]] = {name: net.forward for name, net in nets.items()}
    # many calls per round: the few batches the thread reads ahead between rounds must not count
    timings = common.compare(contenders, calls=100 if quick else 250, rounds=3 if quick else 7, warmup=1)
    common.print_timings(f"Data over LMDB, 28x28 grey, batch {BATCH}, scale + mean_file (per batch)", timings)
    rates = {name: BATCH / t.best for name, t in timings.items()}
    for name, rate in rates.items():
        print(f"    {name:<44} {rate:,.0f} images/s")
    threaded, synchronous = rates.values()
    return [Result("data_layer", "Data over LMDB (28x28 grey, batch 64, scale+mean): images/s",
                   threaded, target=20000, higher_is_better=True, unit=" img/s",
                   note=f"prefetch 0: {synchronous:,.0f} img/s"),
            Result("data_layer", "Data over LMDB without the prefetch thread: images/s", synchronous,
                   unit=" img/s")]


def lenet_nets(source: str) -> dict[str, engine.Net]:
    """Caffe's LeNet (TRAIN) fed by the Data layer, and the same net fed by an Input layer."""
    from google.protobuf import text_format

    from engine.proto import caffe_pb2
    path = os.path.join(ROOT, "tests", "data", "lenet", "lenet_train_test_lmdb.prototxt")
    with open(path, encoding="utf-8") as handle:
        text = handle.read().replace("examples/mnist/mnist_train_lmdb", source)
        text = text.replace("examples/mnist/mnist_test_lmdb", source)
    with_data = text_format.Parse(text, caffe_pb2.NetParameter())
    with_input = caffe_pb2.NetParameter()
    with_input.CopyFrom(with_data)
    del with_input.layer[:2]
    fixed = text_format.Parse(f'''layer {{ name: "in" type: "Input" top: "data" top: "label"
        input_param {{ shape {{ dim: {BATCH} dim: 1 dim: 28 dim: 28 }} shape {{ dim: {BATCH} }} }} }}''',
                              caffe_pb2.NetParameter())
    layers = list(fixed.layer) + list(with_input.layer)
    del with_input.layer[:]
    with_input.layer.extend(layers)
    nets = {"LeNet step, Data over LMDB": engine.Net(with_data, engine.TRAIN),
            "LeNet step, Input (data in memory)": engine.Net(with_input, engine.TRAIN)}
    nets["LeNet step, Data over LMDB"].forward()
    for name in ("data", "label"):
        nets["LeNet step, Input (data in memory)"].blobs[name].data[...] = \
            nets["LeNet step, Data over LMDB"].blobs[name].data
    return nets


def bench_lenet_step(folder: str, quick: bool) -> list[Result]:
    if "Convolution" not in engine.supported_types():
        return []
    nets = lenet_nets(os.path.join(folder, "train_lmdb"))
    contenders: dict[str, Callable[[], object]] = {name: net.forward_backward for name, net in nets.items()}
    timings = common.compare(contenders, calls=3 if quick else 5, rounds=3 if quick else 7, warmup=1)
    common.print_timings(f"Caffe's LeNet forward + backward, batch {BATCH}", timings)
    with_data, with_input = (t.best for t in timings.values())
    return [Result("data_layer", "LeNet forward+backward with Data / with Input", with_data / with_input,
                   note="what reading from LMDB adds to a LeNet step (prefetch thread)")]


def bench_convert_imageset(folder: str, quick: bool) -> list[Result]:
    from PIL import Image
    count = 1000 if quick else 3000
    images, labels = mnist_like(count)
    root = os.path.join(folder, "pngs")
    os.makedirs(root)
    lines = []
    for i in range(count):
        name = f"{i:05d}.png"
        Image.fromarray(images[i, 0], "L").save(os.path.join(root, name))
        lines.append(f"{name} {labels[i]}")
    list_path = os.path.join(folder, "list.txt")
    with open(list_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    rates = {}
    for encoded in (False, True):
        best = float("inf")
        for round_ in range(1 if quick else 3):
            target = os.path.join(folder, f"db_{encoded}_{round_}")
            start = time.perf_counter()
            datatools.convert_imageset(root + "/", list_path, target, gray=True, encoded=encoded)
            best = min(best, time.perf_counter() - start)
        rates[encoded] = count / best
        print(f"  convert_imageset {count} 28x28 PNGs ({'encoded' if encoded else 'raw'}): "
              f"{best:.2f} s, {rates[encoded]:,.0f} images/s")
    return [Result("data_layer", "convert_imageset 28x28 grey PNGs (raw Datums): images/s", rates[False],
                   target=2000, higher_is_better=True, unit=" img/s",
                   note=f"--encoded: {rates[True]:,.0f} img/s")]


def run(quick: bool) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench_data_") as folder:
        results = bench_data_layer(folder, quick)
        results += bench_lenet_step(folder, quick)
        results += bench_convert_imageset(folder, quick)
        datatools.forget_handles()
    return results


def main(argv: list[str] | None = None) -> int:
    return common.quick_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
