"""Model-zoo nets on the CPU: the engine vs the same nets in PyTorch, side by side in one run.

* CaffeNet (BVLC ``bvlc_reference_caffenet`` deploy, ``caffenet_deploy.prototxt`` here:
  two LRNs, grouped convolutions, ceil-mode max pooling, dropout), batch 10, TRAIN phase,
  forward + backward with its ``prob`` Softmax replaced by SoftmaxWithLoss on a label
  input (as its train_val has it). PyTorch: the same layers (``nn.LocalResponseNorm``,
  ``groups=2``, ``ceil_mode=True``) from the engine's weights, ``cross_entropy``,
  ``loss.backward()``. Target: <= 1.25x. (For scale: Caffe 1.0's own ``caffe time``
  took 427 ms on the reference machine kind with 2 threads.)
* ResNet-50 (the published ResNet-50-deploy.prototxt: Convolution + BatchNorm
  ``use_global_stats`` + Scale, in place), forward at batch 1 in the TEST phase, against
  torchvision-style ``BatchNorm2d`` in ``eval()`` under ``inference_mode``. Target: <= 1.5x.

Both contenders get as many threads as numpy's BLAS has; they take turns in rounds and
each ratio is of medians from this run. ``--layers`` adds the engine's per-layer times.

Run: ``python -m benchmarks.zoo_nets`` (``--quick``, ``--json FILE``, ``--layers``).
"""
from __future__ import annotations

import os
import sys

import numpy

if __package__ in (None, ""):  # run as a file: make ``benchmarks`` and ``engine`` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

from google.protobuf import text_format  # noqa: E402

import engine  # noqa: E402
from benchmarks import common  # noqa: E402
from engine.proto import caffe_pb2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CAFFENET = os.path.join(HERE, "caffenet_deploy.prototxt")
RESNET_STAGES = ((64, 256, 3, 1), (128, 512, 4, 2), (256, 1024, 6, 2), (512, 2048, 3, 2))


# -- CaffeNet -------------------------------------------------------------------------------
def caffenet_training_param() -> caffe_pb2.NetParameter:
    """The deploy net with a label input and SoftmaxWithLoss in place of ``prob``."""
    param = caffe_pb2.NetParameter()
    with open(CAFFENET, encoding="utf-8") as handle:
        text_format.Parse(handle.read(), param)
    data_shape = list(param.input_shape[0].dim)
    del param.input[:], param.input_shape[:]  # the deploy's input fields as an Input layer, with a label
    inputs = caffe_pb2.LayerParameter(name="input", type="Input", top=["data", "label"])
    inputs.input_param.shape.add().dim.extend(data_shape)
    inputs.input_param.shape.add().dim.append(data_shape[0])
    layers = [inputs] + list(param.layer)
    del param.layer[:]
    param.layer.extend(layers)
    last = param.layer[-1]
    last.type, last.name = "SoftmaxWithLoss", "loss"
    last.bottom.append("label")
    last.top[:] = ["loss"]
    return param


def fill_randomly(net, seed: int) -> None:
    """Weights N(0, sqrt(2/fan_in)) and biases 0.1: activations keep their scale through the net."""
    gen = numpy.random.default_rng(seed)
    for blobs in net.params.values():
        weight = blobs[0]
        if len(weight.shape) > 1:
            fan_in = weight.count() // weight.shape[0]
            weight.data[...] = gen.normal(0.0, (2.0 / fan_in) ** 0.5, weight.shape)
        if len(blobs) > 1 and len(blobs[1].shape) == 1 and len(weight.shape) > 1:
            blobs[1].data[...] = 0.1


def caffenet_engine(seed: int = 0):
    net = engine.Net(caffenet_training_param(), engine.TRAIN)
    fill_randomly(net, seed)
    gen = numpy.random.default_rng(seed + 1)
    net.blobs["data"].data[...] = gen.normal(size=net.blobs["data"].shape)
    net.blobs["label"].data[...] = gen.integers(0, 1000, size=net.blobs["label"].shape)

    def step() -> float:
        net.clear_param_diffs()
        return net.forward_backward()
    return net, step


def caffenet_torch(torch, net):
    nn, F = torch.nn, torch.nn.functional
    lrn = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)
    layers = {
        "conv1": nn.Conv2d(3, 96, 11, stride=4), "conv2": nn.Conv2d(96, 256, 5, padding=2, groups=2),
        "conv3": nn.Conv2d(256, 384, 3, padding=1), "conv4": nn.Conv2d(384, 384, 3, padding=1, groups=2),
        "conv5": nn.Conv2d(384, 256, 3, padding=1, groups=2), "fc6": nn.Linear(9216, 4096),
        "fc7": nn.Linear(4096, 4096), "fc8": nn.Linear(4096, 1000)}
    model = nn.Sequential(
        layers["conv1"], nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(**lrn),
        layers["conv2"], nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(**lrn),
        layers["conv3"], nn.ReLU(inplace=True), layers["conv4"], nn.ReLU(inplace=True),
        layers["conv5"], nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten(),
        layers["fc6"], nn.ReLU(inplace=True), nn.Dropout(0.5), layers["fc7"], nn.ReLU(inplace=True),
        nn.Dropout(0.5), layers["fc8"])
    copy_weights(torch, layers, net)
    model.train()
    x = torch.from_numpy(numpy.array(net.blobs["data"].data))
    y = torch.from_numpy(numpy.array(net.blobs["label"].data).astype(numpy.int64))

    def step() -> float:
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return float(loss.detach())
    return step


def copy_weights(torch, modules: dict, net) -> None:
    with torch.no_grad():
        for name, module in modules.items():
            blobs = net.params[name]
            module.weight.copy_(torch.from_numpy(numpy.array(blobs[0].data)).reshape(module.weight.shape))
            module.bias.copy_(torch.from_numpy(numpy.array(blobs[1].data)))


# -- ResNet-50 ------------------------------------------------------------------------------
def _conv(name: str, bottom: str, num_output: int, kernel: int, stride: int, pad: int, bias: bool) -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'convolution_param {{ num_output: {num_output} kernel_size: {kernel} stride: {stride} '
            f'pad: {pad} bias_term: {"true" if bias else "false"} }} }}\n')


def _bn_scale(conv: str, suffix: str, relu: bool) -> str:
    text = (f'layer {{ name: "bn{suffix}" type: "BatchNorm" bottom: "{conv}" top: "{conv}" '
            f'batch_norm_param {{ use_global_stats: true }} }}\n'
            f'layer {{ name: "scale{suffix}" type: "Scale" bottom: "{conv}" top: "{conv}" '
            f'scale_param {{ bias_term: true }} }}\n')
    if relu:
        text += f'layer {{ name: "{conv}_relu" type: "ReLU" bottom: "{conv}" top: "{conv}" }}\n'
    return text


def resnet50_prototxt(batch: int = 1) -> str:
    """ResNet-50-deploy.prototxt (He et al.'s published layout: stride 2 on the 1x1 branch2a)."""
    text = (f'name: "ResNet-50"\nlayer {{ name: "input" type: "Input" top: "data" '
            f'input_param {{ shape {{ dim: {batch} dim: 3 dim: 224 dim: 224 }} }} }}\n'
            + _conv("conv1", "data", 64, 7, 2, 3, True) + _bn_scale("conv1", "_conv1", True)
            + 'layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" '
              'pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n')
    bottom = "pool1"
    for stage, (width, out, blocks, stride) in enumerate(RESNET_STAGES, start=2):
        for b in range(blocks):
            block = f"{stage}{chr(ord('a') + b)}"
            s = stride if b == 0 else 1
            if b == 0:
                shortcut = f"res{block}_branch1"
                text += _conv(shortcut, bottom, out, 1, s, 0, False) + _bn_scale(shortcut, f"{block}_branch1", False)
            else:
                shortcut = bottom
            a, bb, c = (f"res{block}_branch2{x}" for x in "abc")
            text += _conv(a, bottom, width, 1, s, 0, False) + _bn_scale(a, f"{block}_branch2a", True)
            text += _conv(bb, a, width, 3, 1, 1, False) + _bn_scale(bb, f"{block}_branch2b", True)
            text += _conv(c, bb, out, 1, 1, 0, False) + _bn_scale(c, f"{block}_branch2c", False)
            text += (f'layer {{ name: "res{block}" type: "Eltwise" bottom: "{shortcut}" bottom: "{c}" '
                     f'top: "res{block}" }}\n'
                     f'layer {{ name: "res{block}_relu" type: "ReLU" bottom: "res{block}" top: "res{block}" }}\n')
            bottom = f"res{block}"
    text += (f'layer {{ name: "pool5" type: "Pooling" bottom: "{bottom}" top: "pool5" '
             'pooling_param { pool: AVE kernel_size: 7 stride: 1 } }\n'
             'layer { name: "fc1000" type: "InnerProduct" bottom: "pool5" top: "fc1000" '
             'inner_product_param { num_output: 1000 } }\n'
             'layer { name: "prob" type: "Softmax" bottom: "fc1000" top: "prob" }\n')
    return text


def resnet50_engine(seed: int = 0):
    param = caffe_pb2.NetParameter()
    text_format.Parse(resnet50_prototxt(), param)
    net = engine.Net(param, engine.TEST)
    gen = numpy.random.default_rng(seed)
    for layer in net.layers:
        if layer.type_name == "Convolution" or layer.type_name == "InnerProduct":
            weight = layer.blobs[0]
            weight.data[...] = gen.normal(0.0, (2.0 / (weight.count() // weight.shape[0])) ** 0.5, weight.shape)
        elif layer.type_name == "BatchNorm":  # statistics: mean 0, variance 1 (factor 1)
            layer.blobs[1].data[...] = 1.0
            layer.blobs[2].data[...] = 1.0
    net.blobs["data"].data[...] = gen.normal(size=net.blobs["data"].shape)
    return net, lambda: net.forward()


def resnet50_torch(torch):
    nn = torch.nn

    def conv_bn(cin, cout, kernel, stride, pad, relu):
        parts = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=pad, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*parts, nn.ReLU(inplace=True)) if relu else nn.Sequential(*parts)

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, cout, stride, project):
            super().__init__()
            self.branch2 = nn.Sequential(conv_bn(cin, width, 1, stride, 0, True), conv_bn(width, width, 3, 1, 1, True),
                                         conv_bn(width, cout, 1, 1, 0, False))
            self.branch1 = conv_bn(cin, cout, 1, stride, 0, False) if project else None

        def forward(self, x):
            shortcut = self.branch1(x) if self.branch1 is not None else x
            return torch.relu(self.branch2(x) + shortcut)

    blocks: list = [nn.Conv2d(3, 64, 7, stride=2, padding=3), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                    nn.MaxPool2d(3, 2, ceil_mode=True)]
    cin = 64
    for width, out, count, stride in RESNET_STAGES:
        for b in range(count):
            blocks.append(Bottleneck(cin, width, out, stride if b == 0 else 1, b == 0))
            cin = out
    blocks += [nn.AvgPool2d(7, 1), nn.Flatten(), nn.Linear(2048, 1000), nn.Softmax(dim=1)]
    model = nn.Sequential(*blocks).eval()
    x = torch.from_numpy(numpy.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype(numpy.float32))

    def forward():
        with torch.inference_mode():
            return model(x)
    return forward


# -- timing -----------------------------------------------------------------------------------
def print_layer_times(title: str, rows) -> None:
    print(f"  engine per layer, {title} (ms forward / backward)")
    for name, fwd, bwd in sorted(rows, key=lambda r: -(r[1] + r[2]))[:15]:
        print(f"    {name:24s} {fwd:8.2f} / {bwd:8.2f}")


def measure(name: str, what: str, target: float, engine_fn, torch_fn, rounds: int) -> common.Result:
    contenders = {"engine": engine_fn}
    if torch_fn is not None:
        contenders["pytorch"] = torch_fn
    timings = common.compare(contenders, calls=1, rounds=rounds, warmup=2)
    common.print_timings(name, timings)
    if torch_fn is None:
        return common.Result(name, what, float("nan"), target=target, note="PyTorch not installed: not measured")
    mine, theirs = timings["engine"].median, timings["pytorch"].median
    return common.Result(name, what, mine / theirs, target=target,
                         note=f"engine {common.format_time(mine)}, PyTorch {common.format_time(theirs)} "
                              f"(medians of {rounds}, {common.thread_count()} threads)")


def run(quick: bool = False, layers: bool = False) -> list[common.Result]:
    torch = common.torch_module()
    common.match_torch_threads()
    rounds = 3 if quick else 7
    results = []
    net, engine_step = caffenet_engine()
    torch_step = caffenet_torch(torch, net) if torch is not None else None
    if torch_step is not None:
        print(f"  CaffeNet loss, first pass: engine {engine_step():.4f}, PyTorch {torch_step():.4f} "
              f"(dropout masks differ)")
    results.append(measure("CaffeNet b10 227x227", "engine fwd+bwd / PyTorch fwd+bwd (medians)", 1.25,
                           engine_step, torch_step, rounds))
    if layers:
        print_layer_times("CaffeNet", common.layer_times(net, backward=True))
    del net, engine_step, torch_step
    resnet, resnet_forward = resnet50_engine()
    torch_forward = resnet50_torch(torch) if torch is not None else None
    results.append(measure("ResNet-50 b1 224x224 TEST", "engine forward / PyTorch forward (medians)", 1.5,
                           resnet_forward, torch_forward, rounds))
    if layers:
        print_layer_times("ResNet-50", common.layer_times(resnet, backward=False))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    layers = "--layers" in argv
    if layers:
        argv.remove("--layers")
    return common.quick_main(lambda quick: run(quick, layers), __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
