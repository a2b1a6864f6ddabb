"""GPU figures: per-iteration time of the engine on a CUDA device vs the same
GEMMs timed bare in cupy (the floor) and vs PyTorch CUDA when it is installed.

Nets (the engine_step nets, float32, SGD momentum 0.9, weight decay 5e-4,
data from an Input layer set once):

* MNIST-sized MLP 784-1024-1024-10 at batch 1024;
* a 4096-wide MLP 4096-4096-4096-10 at batch 4096.

Target (issue 7): engine iteration <= 1.2x the bare-GEMM floor. Without cupy
or a CUDA device this prints one "no CUDA device" line and exits 0.

Run: ``python -m benchmarks.gpu_step`` (``--quick``, ``--json FILE``).
"""
from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import engine  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.common import Result  # noqa: E402
from benchmarks.engine_step import BASE_LR, MOMENTUM, WEIGHT_DECAY, make_batch, solver_prototxt, torch_mlp  # noqa: E402

NETS = [([784, 1024, 1024, 10], 1024), ([4096, 4096, 4096, 10], 4096)]


class CupyGemmFloor:
    """The InnerProduct GEMMs of one forward+backward pass, bare in cupy."""

    def __init__(self, cupy, weights, data):
        self.cupy = cupy
        self.W = [cupy.asarray(w) for w, _ in weights]
        batch = data.shape[0]
        self.x = cupy.asarray(data)
        self.acts = [cupy.ones((batch, w.shape[0]), cupy.float32) for w in self.W]
        self.deltas = [cupy.ones((batch, w.shape[0]), cupy.float32) for w in self.W]
        self.below = [cupy.ones((batch, w.shape[1]), cupy.float32) for w in self.W]
        self.dW = [cupy.zeros_like(w) for w in self.W]

    def __call__(self) -> None:
        matmul = self.cupy.matmul
        inputs = [self.x] + self.acts[:-1]
        for k, w in enumerate(self.W):
            matmul(inputs[k], w.T, out=self.acts[k])
        for k in range(len(self.W) - 1, -1, -1):
            matmul(self.deltas[k].T, inputs[k], out=self.dW[k])
            if k > 0:
                matmul(self.deltas[k], self.W[k], out=self.below[k])


def torch_cuda_step(weights, data, labels):
    torch = common.torch_module()
    if torch is None or not torch.cuda.is_available():
        return None
    device = torch.device("cuda")
    model = torch_mlp(torch, weights).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    criterion = torch.nn.CrossEntropyLoss()
    x = torch.from_numpy(data).to(device)
    y = torch.from_numpy(labels.astype("int64")).to(device)

    def step():
        optimizer.zero_grad(set_to_none=False)
        criterion(model(x), y).backward()
        optimizer.step()
    return step, torch.cuda.synchronize


def bench(cupy, sizes, batch, rounds) -> list[Result]:
    data, labels = make_batch(sizes, batch)
    solver = engine.get_solver(solver_prototxt(sizes, batch), device="gpu")
    solver.net.blobs["data"].data[...] = cupy.asarray(data)
    solver.net.blobs["label"].data[...] = cupy.asarray(labels)
    weights = [(cupy.asnumpy(b[0].data), cupy.asnumpy(b[1].data)) for b in solver.net.params.values()]
    sync = cupy.cuda.Device().synchronize
    contenders = {"engine solver.step(1)": lambda: solver.step(1),
                  "GEMMs alone (bare cupy)": CupyGemmFloor(cupy, weights, data)}
    torch_step = torch_cuda_step(weights, data, labels)
    if torch_step:
        contenders["PyTorch CUDA"] = torch_step[0]

    def sync_all():
        sync()
        if torch_step:
            torch_step[1]()
    timings = common.compare(contenders, calls=20, rounds=rounds, sync=sync_all)
    name = f"GPU MLP {'-'.join(map(str, sizes))} b{batch}"
    common.print_timings(f"{name}: time per iteration", timings)
    step = timings["engine solver.step(1)"].best
    floor = timings["GEMMs alone (bare cupy)"].best
    results = [Result(name, "engine iteration / GEMMs alone", step / floor, target=1.2,
                      note=f"engine {common.format_time(step)}, GEMMs {common.format_time(floor)}")]
    if torch_step:
        torch_time = timings["PyTorch CUDA"].best
        results.append(Result(name, "engine iteration / PyTorch CUDA iteration", step / torch_time,
                              note=f"PyTorch {common.format_time(torch_time)}"))
    return results


def run(quick: bool = False) -> list[Result]:
    ok, why = engine.gpu_status()
    if not ok:
        print(f"  no CUDA device: GPU benchmarks skipped ({why})")
        return [Result("GPU MLPs", "engine iteration / GEMMs alone", float("nan"), target=1.2,
                       note="no CUDA device on this machine: not measured")]
    cupy = engine.backend.cupy_module()
    print(f"  CUDA device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}, "
          f"cupy {cupy.__version__}")
    results = []
    for sizes, batch in NETS:
        results += bench(cupy, sizes, batch, 3 if quick else 7)
    engine.set_mode_cpu()
    return results


def main(argv: list[str] | None = None) -> int:
    return common.quick_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
