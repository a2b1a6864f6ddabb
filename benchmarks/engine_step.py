"""Per-iteration time of the engine vs a bare numpy loop of the same math and
vs PyTorch CPU (when installed), measured side by side in one process.

Two nets, both InnerProduct/ReLU stacks ending in SoftmaxWithLoss, trained by
SGD with momentum 0.9 and L2 weight decay 5e-4 (lr_policy fixed):

* tiny teaching net 2-16-16-3, batch 32 (target: >= 2x faster than PyTorch);
* MNIST-sized MLP 784-1024-1024-10, batch 64 (targets: forward+backward <= 1.2x
  its GEMMs alone in bare numpy; whole iteration <= 0.9x PyTorch).

Data: the engine's net reads one fixed batch from an ``Input`` layer (its
forward does nothing), and the numpy and PyTorch loops use the same arrays
held in memory, so no contender pays for data loading. All three start from
the engine's initial weights.

Timing: the contenders take turns, ``rounds`` times; ratios use each one's best
round (timeit's convention: on a machine shared with other work the minimum is
the stable statistic), and the medians are printed too.

Run: ``python -m benchmarks.engine_step`` (``--quick`` for fewer rounds,
``--json FILE`` to hand the result rows to ``python -m benchmarks``).
"""
from __future__ import annotations

import sys

import numpy

if __package__ in (None, ""):  # run as a file: make ``benchmarks`` and ``engine`` importable
    import os
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import engine  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.common import Result  # noqa: E402

BASE_LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
FLT_MIN = numpy.finfo(numpy.float32).tiny


# -- the engine ---------------------------------------------------------------------
def net_prototxt(sizes: list[int], batch: int) -> str:
    """Input(data, label) -> [InnerProduct -> ReLU]* -> InnerProduct -> SoftmaxWithLoss."""
    lines = [f'layer {{ name: "data" type: "Input" top: "data" top: "label"\n'
             f'  input_param {{ shape {{ dim: {batch} dim: {sizes[0]} }} shape {{ dim: {batch} }} }} }}']
    bottom = "data"
    for k, width in enumerate(sizes[1:], start=1):
        lines.append(f'layer {{ name: "ip{k}" type: "InnerProduct" bottom: "{bottom}" top: "ip{k}"\n'
                     f'  inner_product_param {{ num_output: {width} weight_filler {{ type: "xavier" }}\n'
                     f'    bias_filler {{ type: "constant" value: 0.1 }} }} }}')
        bottom = f"ip{k}"
        if k < len(sizes) - 1:
            lines.append(f'layer {{ name: "relu{k}" type: "ReLU" bottom: "{bottom}" top: "{bottom}" }}')
    lines.append(f'layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "{bottom}" bottom: "label" '
                 f'top: "loss" }}')
    return "\n".join(lines)


def solver_prototxt(sizes: list[int], batch: int) -> str:
    return (f'net_param {{ name: "bench" {net_prototxt(sizes, batch)} }}\n'
            f'type: "SGD" base_lr: {BASE_LR} momentum: {MOMENTUM} weight_decay: {WEIGHT_DECAY}\n'
            f'lr_policy: "fixed" max_iter: 1000000 random_seed: 1 solver_mode: CPU')


def make_batch(sizes: list[int], batch: int, seed: int = 0):
    generator = numpy.random.default_rng(seed)
    data = generator.standard_normal((batch, sizes[0])).astype(numpy.float32)
    labels = generator.integers(0, sizes[-1], batch).astype(numpy.float32)
    return data, labels


def make_solver(sizes: list[int], batch: int, data, labels):
    engine.set_mode_cpu()
    solver = engine.get_solver(solver_prototxt(sizes, batch))
    solver.net.blobs["data"].data[...] = data
    solver.net.blobs["label"].data[...] = labels
    return solver


def engine_weights(solver) -> list[tuple[numpy.ndarray, numpy.ndarray]]:
    return [(blobs[0].data.copy(), blobs[1].data.copy()) for blobs in solver.net.params.values()]


# -- the same math in bare numpy -------------------------------------------------------
class NumpyMLP:
    """A hand-written numpy loop of exactly the engine's math: InnerProduct (x W^T + b),
    ReLU, softmax + NLL (mean over the batch), the three backward products, then
    L2 decay, SGD momentum (h = m h + lr g; W -= h). Buffers are preallocated."""

    def __init__(self, weights, data, labels):
        self.W = [w.copy() for w, _ in weights]
        self.b = [b.copy() for _, b in weights]
        self.params = [p for pair in zip(self.W, self.b) for p in pair]
        self.grads = [numpy.zeros_like(p) for p in self.params]
        self.history = [numpy.zeros_like(p) for p in self.params]
        self.scratch = [numpy.zeros_like(p) for p in self.params]
        self.x = data
        self.labels = labels.astype(numpy.intp)
        batch = data.shape[0]
        self.acts = [numpy.zeros((batch, w.shape[0]), numpy.float32) for w in self.W]
        self.deltas = [numpy.zeros((batch, w.shape[1]), numpy.float32) for w in self.W]
        self.rows = numpy.arange(batch)
        self.scale = numpy.float32(1.0 / batch)

    def forward_backward(self) -> float:
        inputs = [self.x] + self.acts[:-1]
        last = len(self.W) - 1
        for k, (w, b, out) in enumerate(zip(self.W, self.b, self.acts)):
            numpy.matmul(inputs[k], w.T, out=out)
            out += b
            if k < last:
                numpy.maximum(out, 0, out=out)
        prob = self.acts[-1]
        prob -= prob.max(axis=1, keepdims=True)
        numpy.exp(prob, out=prob)
        prob /= prob.sum(axis=1, keepdims=True)
        picked = prob[self.rows, self.labels]
        loss = -float(numpy.log(numpy.maximum(picked, FLT_MIN)).sum()) / len(self.rows)
        delta = prob
        delta[self.rows, self.labels] -= 1
        delta *= self.scale
        for k in range(last, -1, -1):
            numpy.matmul(delta.T, inputs[k], out=self.grads[2 * k])
            delta.sum(axis=0, out=self.grads[2 * k + 1])
            if k > 0:
                below = self.deltas[k]
                numpy.matmul(delta, self.W[k], out=below)
                below *= inputs[k] > 0
                delta = below
        return loss

    def update(self) -> None:
        lr, m, wd = numpy.float32(BASE_LR), numpy.float32(MOMENTUM), numpy.float32(WEIGHT_DECAY)
        for p, g, h, s in zip(self.params, self.grads, self.history, self.scratch):
            numpy.multiply(p, wd, out=s)
            g += s
            h *= m
            numpy.multiply(g, lr, out=s)
            h += s
            p -= h

    def step(self) -> float:
        loss = self.forward_backward()
        self.update()
        return loss


class GemmFloor:
    """The InnerProduct GEMMs of one forward+backward pass, bare (same shapes and
    operand layouts as the engine: 3 per layer, none for the data's diff)."""

    def __init__(self, weights, data):
        self.W = [w.copy() for w, _ in weights]
        batch = data.shape[0]
        self.x = data
        self.acts = [numpy.ones((batch, w.shape[0]), numpy.float32) for w in self.W]
        self.deltas = [numpy.ones((batch, w.shape[0]), numpy.float32) for w in self.W]
        self.below = [numpy.ones((batch, w.shape[1]), numpy.float32) for w in self.W]
        self.dW = [numpy.zeros_like(w) for w in self.W]

    def __call__(self) -> None:
        inputs = [self.x] + self.acts[:-1]
        for k, w in enumerate(self.W):
            numpy.matmul(inputs[k], w.T, out=self.acts[k])
        for k in range(len(self.W) - 1, -1, -1):
            numpy.matmul(self.deltas[k].T, inputs[k], out=self.dW[k])
            if k > 0:
                numpy.matmul(self.deltas[k], self.W[k], out=self.below[k])


# -- PyTorch -------------------------------------------------------------------------
def torch_mlp(torch, weights):
    """The same Linear/ReLU stack in PyTorch, starting from the engine's weights."""
    layers = []
    for k, (w, b) in enumerate(weights):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if k < len(weights) - 1:
            layers.append(torch.nn.ReLU(inplace=True))
    return torch.nn.Sequential(*layers)


def torch_step_fn(weights, data, labels):
    """One PyTorch SGD iteration (zero_grad, forward, backward, step), or None."""
    torch = common.torch_module()
    if torch is None:
        return None
    common.match_torch_threads()
    model = torch_mlp(torch, weights)
    optimizer = torch.optim.SGD(model.parameters(), lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    criterion = torch.nn.CrossEntropyLoss()
    x = torch.from_numpy(data)
    y = torch.from_numpy(labels.astype(numpy.int64))

    def step():
        optimizer.zero_grad(set_to_none=False)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return step


# -- the two benchmarks -----------------------------------------------------------------
def bench_tiny(rounds: int) -> list[Result]:
    sizes, batch = [2, 16, 16, 3], 32
    data, labels = make_batch(sizes, batch)
    solver = make_solver(sizes, batch, data, labels)
    weights = engine_weights(solver)
    contenders = {"engine solver.step(1)": lambda: solver.step(1),
                  "bare numpy loop": NumpyMLP(weights, data, labels).step}
    torch_step = torch_step_fn(weights, data, labels)
    if torch_step:
        contenders["PyTorch CPU"] = torch_step
    timings = common.compare(contenders, calls=2000, rounds=rounds)
    common.print_timings(f"tiny net {'-'.join(map(str, sizes))}, batch {batch}: time per iteration", timings)
    eng = timings["engine solver.step(1)"].best
    results = [
        Result("tiny 2-16-16-3 b32", "engine iterations per second", 1.0 / eng, unit="/s",
               note=f"{common.format_time(eng)} per iteration"),
        Result("tiny 2-16-16-3 b32", "engine time / bare numpy time", eng / timings["bare numpy loop"].best,
               note="Python overhead over the same ufunc/GEMM calls"),
    ]
    if torch_step:
        results.append(Result("tiny 2-16-16-3 b32", "PyTorch time / engine time (speed-up)",
                              timings["PyTorch CPU"].best / eng, target=2.0, higher_is_better=True,
                              note=f"PyTorch {common.format_time(timings['PyTorch CPU'].best)} per iteration"))
    else:
        results.append(Result("tiny 2-16-16-3 b32", "PyTorch speed-up", float("nan"), target=2.0,
                              higher_is_better=True, note="PyTorch not installed: not measured"))
    return results


def bench_mnist(rounds: int) -> list[Result]:
    sizes, batch = [784, 1024, 1024, 10], 64
    data, labels = make_batch(sizes, batch)
    solver = make_solver(sizes, batch, data, labels)
    net = solver.net
    weights = engine_weights(solver)

    def engine_forward_backward():
        net.clear_param_diffs()
        net.forward_backward()

    # Forward+backward against its GEMM floor is timed in rounds of its own: PyTorch's
    # OpenMP threads keep spinning on the cores for a while after each of its turns, and
    # whichever contender follows them pays for it. The floor's 8 back-to-back GEMMs on
    # constant operands suffer least from that, so mixing them in skews this one ratio.
    floor_timings = common.compare({"engine clear + forward_backward": engine_forward_backward,
                                    "GEMMs alone (bare numpy)": GemmFloor(weights, data)},
                                   calls=10, rounds=2 * rounds + 1)
    contenders = {"engine solver.step(1)": lambda: solver.step(1),
                  "bare numpy loop": NumpyMLP(weights, data, labels).step}
    torch_step = torch_step_fn(weights, data, labels)
    if torch_step:
        contenders["PyTorch CPU"] = torch_step
    timings = common.compare(contenders, calls=10, rounds=2 * rounds + 1)
    timings.update(floor_timings)
    common.print_timings(f"MNIST-sized MLP {'-'.join(map(str, sizes))}, batch {batch}: time per call", timings)
    step = timings["engine solver.step(1)"].best
    fb = timings["engine clear + forward_backward"].best
    gemm = timings["GEMMs alone (bare numpy)"].best
    name = "MLP 784-1024-1024-10 b64"
    results = [
        Result(name, "forward+backward / GEMMs alone", fb / gemm, target=1.2,
               note=f"fb {common.format_time(fb)}, GEMMs {common.format_time(gemm)} (fb includes clearing diffs)"),
        Result(name, "engine iteration / bare numpy iteration", step / timings["bare numpy loop"].best,
               note=f"engine {common.format_time(step)} per iteration"),
    ]
    if torch_step:
        results.append(Result(name, "engine iteration / PyTorch iteration",
                              step / timings["PyTorch CPU"].best, target=0.9,
                              note=f"PyTorch {common.format_time(timings['PyTorch CPU'].best)} per iteration"))
    else:
        results.append(Result(name, "engine iteration / PyTorch iteration", float("nan"), target=0.9,
                              note="PyTorch not installed: not measured"))
    return results


def run(quick: bool = False) -> list[Result]:
    rounds = 3 if quick else 9
    return bench_tiny(rounds) + bench_mnist(rounds)


def main(argv: list[str] | None = None) -> int:
    return common.quick_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
