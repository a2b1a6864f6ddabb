"""Loading a CaffeNet-sized .caffemodel (about 233 MiB, written by ``net.save``):
time and extra memory of ``net.copy_from`` (targets: <= 3 s and <= 1.5x the
file's size). Also the time ``net.save`` takes to write it, against building the
NetParameter with protobuf's API and serializing it (the bytes are the same).

The net has CaffeNet's parameter count (61 M) in InnerProduct layers. Each load
runs in a fresh process that first builds the net (its weights already
allocated, as when a user loads weights into a net), then resets the kernel's
peak-RSS mark (/proc/self/clear_refs) so that the peak read afterwards is the
load's own. For scale, the same file is also read the plain protobuf way (parse
the whole NetParameter, convert each blob, copy), in its own process.

Run: ``python -m benchmarks.load_weights`` (``--quick``: one load each instead of
three; ``--json FILE`` for ``python -m benchmarks``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

from benchmarks import common  # noqa: E402
from benchmarks.common import Result  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SECONDS = 3.0
TARGET_MEMORY = 1.5   # extra peak memory / file size

# CaffeNet's 60,965,224 parameters, as fully connected layers (fc6..fc8 are CaffeNet's own)
NET = """name: "caffenet_sized"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 9216 } } }
layer { name: "convs" type: "InnerProduct" bottom: "data" top: "convs" inner_product_param { num_output: 253 } }
layer { name: "fc6" type: "InnerProduct" bottom: "data" top: "fc6" inner_product_param { num_output: 4096 } }
layer { name: "fc7" type: "InnerProduct" bottom: "fc6" top: "fc7" inner_product_param { num_output: 4096 } }
layer { name: "fc8" type: "InnerProduct" bottom: "fc7" top: "fc8" inner_product_param { num_output: 1000 } }
"""

CHILD = r"""
import gc, json, sys, time
sys.path.insert(0, {root!r})
import numpy
import engine
from engine.proto import caffe_pb2

def status(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return -1

def protobuf_way(net, path):
    with open(path, "rb") as handle:
        param = caffe_pb2.NetParameter.FromString(handle.read())
    layers = {{layer.name: layer for layer in net.layers}}
    for source in param.layer:
        for proto, blob in zip(source.blobs, layers[source.name].blobs if source.name in layers else []):
            blob.data[...] = numpy.array(proto.data, dtype=numpy.float32).reshape(blob.shape)

net = engine.Net({net!r}, engine.TEST)
gc.collect()
try:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")   # resets VmHWM, the peak resident size
    reset = True
except OSError:
    reset = False
before = status("VmRSS")
start = time.perf_counter()
if {mode!r} == "engine":
    net.copy_from({path!r})
else:
    protobuf_way(net, {path!r})
seconds = time.perf_counter() - start
peak = status("VmHWM") if reset else -1
checksum = float(sum(float(b.data.reshape(-1)[:1000].sum()) for bs in net.params.values() for b in bs))
print(json.dumps({{"seconds": seconds, "extra": peak - before if reset else float("nan"), "checksum": checksum}}))
"""


def load_in_child(path: str, mode: str) -> dict:
    code = CHILD.format(root=ROOT, net=NET, path=path, mode=mode)
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def make_file(folder: str) -> tuple[str, float, dict[str, float]]:
    """Write the net's filler weights as a binary .caffemodel; (path, checksum of what was
    saved, seconds to write it with net.save and the protobuf way)."""
    sys.path.insert(0, ROOT)
    import engine
    from engine import io as engine_io
    net = engine.Net(NET, engine.TEST)
    path = os.path.join(folder, "caffenet_sized.caffemodel")
    start = time.perf_counter()
    net.save(path)
    seconds = {"engine": time.perf_counter() - start}
    start = time.perf_counter()
    with open(os.path.join(folder, "protobuf.caffemodel"), "wb") as handle:
        handle.write(engine_io.net_to_proto(net).SerializeToString())
    seconds["protobuf"] = time.perf_counter() - start
    with open(path, "rb") as mine, open(os.path.join(folder, "protobuf.caffemodel"), "rb") as theirs:
        if mine.read() != theirs.read():
            raise SystemExit("net.save wrote other bytes than protobuf's own encoder")
    os.remove(os.path.join(folder, "protobuf.caffemodel"))
    print(f"  wrote {os.path.getsize(path) / 2**20:.1f} MiB with net.save in {seconds['engine']:.2f} s "
          f"(protobuf's API: {seconds['protobuf']:.2f} s, the same bytes)")
    checksum = float(sum(float(b.data.reshape(-1)[:1000].sum()) for bs in net.params.values() for b in bs))
    return path, checksum, seconds


def run(quick: bool = False) -> list[Result]:
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench_load_") as folder:
        path, saved, save_seconds = make_file(folder)
        size = os.path.getsize(path)
        runs: dict[str, list[dict]] = {"engine": [], "protobuf": []}
        for _ in range(rounds):   # round-robin: a slow moment of the machine hits both
            for mode in runs:
                result = load_in_child(path, mode)
                if abs(result["checksum"] - saved) > 1e-3 * max(1.0, abs(saved)):
                    raise SystemExit(f"{mode}: the loaded weights differ from the saved ones")
                runs[mode].append(result)
    best = {mode: min(r["seconds"] for r in rs) for mode, rs in runs.items()}
    extra = {mode: min(r["extra"] for r in rs) for mode, rs in runs.items()}
    mib = size / 2**20
    for mode in runs:
        print(f"  {mode:9s} load: best {best[mode]:.2f} s, extra peak memory {extra[mode] / 2**20:.0f} MiB "
              f"({extra[mode] / size:.2f}x the file) over {rounds} fresh process(es)")
    name = f"load weights ({mib:.0f} MiB .caffemodel)"
    return [
        Result(name, "net.copy_from seconds", best["engine"], target=TARGET_SECONDS, unit=" s",
               note=f"protobuf parse + convert: {best['protobuf']:.2f} s"),
        Result(name, "extra peak memory / file size", extra["engine"] / size, target=TARGET_MEMORY,
               note=f"{extra['engine'] / 2**20:.0f} MiB; protobuf parse + convert: "
                    f"{extra['protobuf'] / size:.2f}x"),
        Result(name, "net.save / protobuf's API (write time)", save_seconds["engine"] / save_seconds["protobuf"],
               note=f"net.save {save_seconds['engine']:.2f} s, NetParameter built and serialized by protobuf "
                    f"{save_seconds['protobuf']:.2f} s; identical bytes"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one load of each kind instead of three")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args(argv)
    results = run(args.quick)
    print(common.machine_line())
    common.report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
