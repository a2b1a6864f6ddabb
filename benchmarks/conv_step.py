"""Per-iteration time of a LeNet-MNIST-sized net: the engine vs PyTorch CPU.

Net (Caffe's examples/mnist LeNet): data 64 x 1 x 28 x 28 -> conv 20 5x5 ->
max pool 2/2 -> conv 50 5x5 -> max pool 2/2 -> ip 500 -> relu -> ip 10 ->
softmax loss. One iteration = forward + backward + SGD update (momentum 0.9,
weight decay 5e-4, fixed lr). The data is one fixed random batch from an
``Input`` layer, so no contender pays for loading. PyTorch (when installed)
starts from the engine's initial weights, uses as many threads as numpy's
BLAS, and both losses after the first step are printed as a sanity check.
The contenders take turns in rounds and the ratio is of medians measured in
this same run.

Run: ``python -m benchmarks.conv_step`` (``--rounds N``, ``--iters N``,
``--layers`` for the engine's per-layer forward/backward times).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy

if __package__ in (None, ""):  # run as a file: make ``engine`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from google.protobuf import text_format  # noqa: E402

import engine  # noqa: E402
from engine.proto import caffe_pb2  # noqa: E402

BATCH = 64
LR, MOMENTUM, DECAY = 0.01, 0.9, 5e-4

_LIMITS = None

NET = f"""
name: "lenet_bench"
layer {{ name: "data" type: "Input" top: "data" top: "label"
        input_param {{ shape {{ dim: {BATCH} dim: 1 dim: 28 dim: 28 }} shape {{ dim: {BATCH} }} }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param {{ num_output: 20 kernel_size: 5 stride: 1
                            weight_filler {{ type: "xavier" }} bias_filler {{ type: "constant" }} }} }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param {{ num_output: 50 kernel_size: 5 stride: 1
                            weight_filler {{ type: "xavier" }} bias_filler {{ type: "constant" }} }} }}
layer {{ name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
        inner_product_param {{ num_output: 500 weight_filler {{ type: "xavier" }}
                              bias_filler {{ type: "constant" }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param {{ num_output: 10 weight_filler {{ type: "xavier" }}
                              bias_filler {{ type: "constant" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""


def blas_threads() -> int:
    """Threads numpy's BLAS uses (threadpoolctl when installed, else the CPU count)."""
    try:
        import threadpoolctl
        counts = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return max(counts)
    except ImportError:
        pass
    return os.cpu_count() or 1


def limit_threads(count: int) -> None:
    """Give numpy's BLAS ``count`` threads (needs threadpoolctl); PyTorch follows blas_threads()."""
    try:
        import threadpoolctl
    except ImportError:
        print("threadpoolctl is not installed: --threads is ignored for numpy")
        return
    global _LIMITS
    _LIMITS = threadpoolctl.threadpool_limits(count, user_api="blas")  # kept: the limit lasts


def make_batch(seed: int = 0):
    gen = numpy.random.default_rng(seed)
    data = gen.random((BATCH, 1, 28, 28), dtype=numpy.float32)
    labels = gen.integers(0, 10, size=BATCH).astype(numpy.float32)
    return data, labels


def engine_solver(data, labels) -> engine.Solver:
    param = caffe_pb2.SolverParameter(base_lr=LR, momentum=MOMENTUM, weight_decay=DECAY,
                                      lr_policy="fixed", max_iter=10 ** 9, random_seed=1701)
    param.type = "SGD"
    text_format.Parse(NET, param.net_param)
    solver = engine.get_solver(param, device="cpu")
    solver.net.blobs["data"].data[...] = data
    solver.net.blobs["label"].data[...] = labels
    return solver


def torch_step_fn(torch, solver, data, labels):
    """A PyTorch model with the engine's initial weights and one-iteration closure."""
    nn, F = torch.nn, torch.nn.functional
    torch.set_num_threads(blas_threads())
    model = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2, 2, ceil_mode=True), nn.Conv2d(20, 50, 5),
                          nn.MaxPool2d(2, 2, ceil_mode=True), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(),
                          nn.Linear(500, 10))
    params = solver.net.params
    with torch.no_grad():
        for module, name in zip((model[0], model[2], model[5], model[7]), ("conv1", "conv2", "ip1", "ip2")):
            module.weight.copy_(torch.from_numpy(numpy.asarray(params[name][0].data)))
            module.bias.copy_(torch.from_numpy(numpy.asarray(params[name][1].data)))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
    x, y = torch.from_numpy(data), torch.from_numpy(labels.astype(numpy.int64))

    def step() -> float:
        optimizer.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def round_robin(contenders: dict, rounds: int, iters: int) -> dict[str, list[float]]:
    """Seconds per iteration of each contender, ``rounds`` samples of ``iters`` iterations each."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            for _ in range(iters):
                fn()
            times[name].append((time.perf_counter() - start) / iters)
    return times


def report_row(medians: dict[str, float], json_path: str | None) -> None:
    """The table row (engine / PyTorch per iteration, target <= 1.5x) for ``python -m benchmarks``."""
    from benchmarks import common
    name = f"LeNet b{BATCH} 1x28x28"
    if "pytorch" in medians:
        row = common.Result(name, "engine iteration / PyTorch iteration (medians)",
                            medians["engine"] / medians["pytorch"], target=1.5,
                            note=f"engine {1e3 * medians['engine']:.2f} ms, PyTorch {1e3 * medians['pytorch']:.2f} ms")
    else:
        row = common.Result(name, "engine iteration / PyTorch iteration", float("nan"), target=1.5,
                            note="PyTorch not installed: not measured")
    common.report([row], json_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--layers", action="store_true", help="print the engine's per-layer times")
    parser.add_argument("--threads", type=int, default=0,
                        help="BLAS and PyTorch threads (default: as numpy's BLAS has them)")
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--json", help="also write the table row to this file (for python -m benchmarks)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 3
    if args.threads:
        limit_threads(args.threads)

    data, labels = make_batch()
    solver = engine_solver(data, labels)
    contenders = {"engine": lambda: solver.step(1)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch_step = torch_step_fn(torch, solver, data, labels)
        first_torch = torch_step()
        first_engine = solver.step(1)
        print(f"loss after the first step: engine {first_engine:.6f}, PyTorch {first_torch:.6f}")
        contenders["pytorch"] = torch_step
    for fn in contenders.values():  # warm up
        for _ in range(3):
            fn()
    times = round_robin(contenders, args.rounds, args.iters)
    print(f"LeNet-MNIST step (batch {BATCH}, 1x28x28, forward+backward+SGD), {os.cpu_count()} CPUs, "
          f"BLAS threads {blas_threads()}, numpy {numpy.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ""))
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    for name, samples in times.items():
        print(f"  {name:8s} median {1e3 * medians[name]:8.2f} ms/iter   "
              f"(min {1e3 * min(samples):.2f}, max {1e3 * max(samples):.2f}; {args.rounds} x {args.iters})")
    if "pytorch" in medians:
        print(f"  ratio engine / PyTorch = {medians['engine'] / medians['pytorch']:.2f}")
    else:
        print("  PyTorch is not installed: no comparison")
    report_row(medians, args.json)
    if args.layers:
        print("  engine per layer (ms): forward / backward")
        from benchmarks import common
        for name, fwd, bwd in common.layer_times(solver.net, backward=True, repeats=20):
            print(f"    {name:8s} {fwd:7.2f} / {bwd:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
