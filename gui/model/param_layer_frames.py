"""What the inspector shows for a layer other than InnerProduct (Qt-free).

:func:`layer_frame` copies, for one layer, what the engine computed in the last
iteration: its parameter blobs (W, b, BatchNorm's statistics, Scale's γ/β,
PReLU's slopes) with their raw gradient dW and the update V the solver applied,
its input and output feature maps, δ arriving (top diff) and δ sent down (bottom
diff); for Convolution and Deconvolution the seed's products in their im2col
form with live shapes. Nothing is recomputed: the arrays are the engine's own
(host copies), made by the worker with the session lock held.

:func:`mosaic` lays (n, c, h, w) maps out as a grid of tiles (channels side by
side, NaN between tiles) for the views to draw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy

from engine.backend import to_numpy

#: Samples (images of the batch) copied per frame; the sample chooser goes up to this.
MAX_SAMPLES = 64
#: Input channels of each filter shown side by side in the W / dW / V tiles.
MAX_FILTER_CHANNELS = 8
#: Feature maps (channels of one sample) drawn at most.
MAX_MAPS = 256

#: Display names of each layer type's parameter blobs, in the engine's order.
PARAM_NAMES: dict[str, tuple] = {
    "Convolution": ("W", "b"), "Deconvolution": ("W", "b"), "InnerProduct": ("W", "b"),
    "Embed": ("W", "b"), "PReLU": ("slope a",), "Bias": ("bias β",),
    "BatchNorm": ("mean (running sum)", "variance (running sum)", "scale factor"),
    "Parameter": ("value",),
    # LSTM / RNN without, then with, a static input (recurrent_layer.cpp's blob order)
    "LSTM": (("W_xc", "b_c", "W_hc"), ("W_xc", "b_c", "W_xc_static", "W_hc")),
    "RNN": (("W_xh", "b_h", "W_hh", "W_ho", "b_o"), ("W_xh", "b_h", "W_xh_static", "W_hh", "W_ho", "b_o")),
}

#: One line per layer type: what its forward computes.
FORMULAS = {
    "BatchNorm": "y = (x − mean) / √(var + eps), per channel",
    "Scale": "y = γ·x (+ β), per channel",
    "Bias": "y = x + β, per channel",
    "PReLU": "y = max(0, x) + a·min(0, x), a per channel (or shared)",
    "ReLU": "y = max(0, x) (+ negative_slope·min(0, x))",
    "Pooling": "y = max (or mean) of each pooling window",
    "LRN": "y = x / (k + α/n·Σ x²)^β over neighbouring channels",
    "Sigmoid": "y = 1 / (1 + e^(−x))",
    "TanH": "y = tanh(x)",
    "Dropout": "y = x·mask / (1 − p) in TRAIN",
    "SoftmaxWithLoss": "loss = −Σ log softmax(x)[label] / normalizer",
    "SPP": "y = the max (or mean) over a 1×1, 2×2, 4×4 … grid of bins, flattened and joined",
    "Im2col": "y = the im2col columns: one column per output position, C·kh·kw rows",
    "Filter": "y = the items whose selector is not 0 (their δ goes back to them, 0 to the rest)",
    "BatchReindex": "y[k] = x[index[k]] (δ of repeated indices adds up)",
    "Parameter": "y = the layer's learnable blob (its δ is the blob's gradient)",
    "LSTM": "per step t: gates = W_xc·x_t + b_c + W_hc·(cont_t·h_{t−1}); c_t, h_t = LSTMUnit(c_{t−1}, gates)",
    "LSTMUnit": "i, f, o = σ(gates), g = tanh(gates); c = cont·f·c_prev + i·g; h = o·tanh(c)",
    "RNN": "per step t: h_t = tanh(W_xh·x_t + b_h + W_hh·(cont_t·h_{t−1})); o_t = tanh(W_ho·h_t + b_o)",
}

NO_PARAMS = "has no parameters: nothing is learned here; its backward only passes δ down."
BATCHNORM_NOTE = ("BatchNorm's blobs are statistics, not learned (lr_mult 0): running sums of the batch "
                  "means and variances and their scale factor; the statistics used are sum / scale factor.")


@dataclass
class ParamMap:
    """One parameter blob: its values, raw gradient and the update the solver applied."""

    name: str
    shape: tuple
    data: numpy.ndarray
    grad: numpy.ndarray | None = None     # raw gradient of the last backward (before decay, momentum, lr)
    update: numpy.ndarray | None = None   # V, the update applied (W −= V)
    lr_mult: float = 1.0
    statistics: bool = False              # BatchNorm: running statistics, not learned


@dataclass
class LayerFrame:
    """Everything the inspector shows for one layer that is not an InnerProduct.

    ``input`` / ``output`` / ``delta`` / ``delta_down`` are the first
    :data:`MAX_SAMPLES` samples of bottom data, top data, top diff (δ arriving) and
    bottom diff (δ sent down), in the blob's own shape (N×C×H×W, N×D ...); None
    where there is none (with the reason in ``missing``).
    """

    layer: str
    type: str
    index: int
    params: list[ParamMap] = field(default_factory=list)
    bottom_name: str = ""
    top_name: str = ""
    bottom_shape: tuple = ()
    top_shape: tuple = ()
    num: int = 0                          # samples in the batch
    input: numpy.ndarray | None = None
    output: numpy.ndarray | None = None
    delta: numpy.ndarray | None = None
    delta_down: numpy.ndarray | None = None
    missing: dict[str, str] = field(default_factory=dict)   # map -> why it is not shown
    notes: list[str] = field(default_factory=list)
    formula: str = ""
    products: list[tuple[str, str]] = field(default_factory=list)   # (formula, live shapes)
    col_shape: tuple | None = None        # Convolution: the per-image col buffer [C·kh·kw × Ho·Wo]
    in_place: bool = False
    pending_backward: bool = False

    @property
    def has_params(self) -> bool:
        return bool(self.params)

    def sample(self, which: str, n: int) -> numpy.ndarray | None:
        """Sample ``n`` of ``input`` / ``output`` / ``delta`` / ``delta_down`` (None when absent)."""
        array = getattr(self, which)
        if array is None or array.ndim == 0 or n >= array.shape[0]:
            return None
        return array[n]


@dataclass
class Mosaic:
    """Tiles (n, c, h, w) drawn as one image: a grid of tiles, each tile's channels side by
    side, NaN between tiles. ``tiles`` holds exactly the values drawn."""

    image: numpy.ndarray
    tiles: numpy.ndarray
    grid: tuple[int, int]
    pad: int

    def origin(self, tile: int, channel: int = 0) -> tuple[int, int]:
        """(row, col) of the top-left pixel of ``channel`` of ``tile`` in ``image``."""
        _, channels, h, w = self.tiles.shape
        r, c = divmod(tile, self.grid[1])
        return (r * (h + self.pad) + self.pad,
                c * (channels * (w + self.pad) + self.pad) + channel * (w + self.pad) + self.pad)

    def locate(self, row: int, col: int) -> tuple[int, int, int, int] | None:
        """(tile, channel, y, x) at pixel (row, col) of ``image``; None between tiles."""
        n, channels, h, w = self.tiles.shape
        tile_w = channels * (w + self.pad) + self.pad
        gr, y = divmod(row - self.pad, h + self.pad)
        gc, inside = divmod(col, tile_w)
        channel, x = divmod(inside - self.pad, w + self.pad)
        tile = gr * self.grid[1] + gc
        if row < self.pad or y >= h or inside < self.pad or x >= w or not 0 <= channel < channels:
            return None
        if not 0 <= gr < self.grid[0] or not 0 <= gc < self.grid[1] or tile >= n:
            return None
        return tile, channel, y, x


def mosaic(tiles: numpy.ndarray, pad: int = 1, columns: int | None = None) -> Mosaic:
    """Lay out ``tiles`` (n, c, h, w) in a near-square grid (``columns`` per row if given)."""
    tiles = numpy.asarray(tiles, dtype=numpy.float32)
    n, channels, h, w = tiles.shape
    cols = columns or max(1, math.ceil(math.sqrt(n / max(1, channels) * h / max(1, w))))
    cols = min(max(1, cols), max(1, n))
    grid = (max(1, math.ceil(n / cols)), cols)
    height = grid[0] * (h + pad) + pad
    width = grid[1] * (channels * (w + pad) + pad)
    image = numpy.full((height, width), numpy.nan, dtype=numpy.float32)
    result = Mosaic(image, tiles, grid, pad)
    for k in range(n):
        for c in range(channels):
            top, left = result.origin(k, c)
            image[top:top + h, left:left + w] = tiles[k, c]
    return result


def best_columns(tiles_shape: tuple, width: float, height: float, pad: int = 1) -> int:
    """Tiles per row that make (n, c, h, w) tiles largest in a width × height area."""
    n, channels, h, w = tiles_shape
    tile_w, tile_h = channels * (w + pad) + pad, h + pad
    best, best_cols = -1.0, 1
    for cols in range(1, max(1, n) + 1):
        rows = math.ceil(n / cols)
        scale = min(width / (cols * tile_w + pad), height / (rows * tile_h + pad))
        if scale > best + 1e-12:
            best, best_cols = scale, cols
    return best_cols


def as_tiles(array: numpy.ndarray) -> numpy.ndarray | None:
    """A filter bank or one sample's maps as (n, c, h, w), or None when it has no spatial axes.

    4-D (n, c, h, w) stays; 3-D (c, h, w) (one sample's maps) becomes c tiles of one
    channel; 3-D weights of a 1-D convolution (n, c, k) are n tiles of c×1×k.
    """
    if array.ndim == 4:
        return array
    if array.ndim == 3:
        return array[:, None, :, :]
    return None


def filter_tiles(weights: numpy.ndarray, max_channels: int = MAX_FILTER_CHANNELS) -> numpy.ndarray | None:
    """A convolution's W [Co, C/g, kh, kw] (or [Co, C/g, k]) as tiles: one per filter,
    its first ``max_channels`` input channels side by side."""
    if weights.ndim == 3:
        weights = weights[:, :, None, :]
    if weights.ndim != 4:
        return None
    return weights[:, :max_channels]


def map_tiles(sample: numpy.ndarray, max_maps: int = MAX_MAPS) -> numpy.ndarray | None:
    """One sample's feature maps (C, H, W) (or (C, W)) as C tiles of one channel (the first ``max_maps``)."""
    if sample.ndim == 2:
        sample = sample[:, None, :]
    if sample.ndim != 3:
        return None
    return sample[:max_maps, None, :, :]


# --------------------------------------------------------------------------- building
def inspected_layers(net) -> list[str]:
    """Layers whose δ / δ_down the engine must keep for the inspector (net.capture_layers):
    every layer with parameters, and every layer whose input blob an in-place layer below
    it rewrites in its own backward (its δ_down would be gone by the end)."""
    in_place_tops = {tops[0] for tops, bottoms in zip(net.top_names, net.bottom_names)
                     if tops and bottoms and tops[0] == bottoms[0]}
    names = []
    for layer, bottoms, tops in zip(net.layers, net.bottom_names, net.top_names):
        if not bottoms or not tops:
            continue
        if layer.blobs or (bottoms[0] in in_place_tops and tops[0] != bottoms[0]):
            names.append(layer.name)
    return names


def _param_name(layer, j: int) -> str:
    names = PARAM_NAMES.get(layer.type_name)
    if layer.type_name in ("LSTM", "RNN"):
        names = next((n for n in PARAM_NAMES[layer.type_name] if len(n) == len(layer.blobs)), None)
    if layer.type_name == "Scale":
        return "bias β" if j == getattr(layer, "bias_index", None) else "scale γ"
    if names and j < len(names):
        return names[j]
    return f"param {j}"


def _lr_mult(layer, j: int) -> float:
    specs = layer.param.param
    return float(specs[j].lr_mult) if j < len(specs) and specs[j].HasField("lr_mult") else 1.0


def _first(blob_array) -> numpy.ndarray:
    """A host copy of the first MAX_SAMPLES samples of a blob's array."""
    array = blob_array[:MAX_SAMPLES] if blob_array.ndim >= 1 else blob_array
    return numpy.array(to_numpy(array), copy=True)


def _params(solver, layer, update_applied: bool, pending: bool) -> list[ParamMap]:
    from gui.model.frames import _param_indices
    index_of = _param_indices(solver.net)
    raw = solver.raw_gradients
    maps = []
    for j, blob in enumerate(layer.blobs):
        p = ParamMap(_param_name(layer, j), tuple(blob.shape), numpy.array(to_numpy(blob.data), copy=True),
                     lr_mult=_lr_mult(layer, j), statistics=layer.type_name == "BatchNorm")
        if not pending and blob.has_diff:
            if update_applied:
                k = index_of.get(id(blob))
                if raw and k is not None and k < len(raw):
                    p.grad = numpy.array(to_numpy(raw[k]), copy=True)
                if solver.iter > 0:
                    p.update = numpy.array(to_numpy(blob.diff), copy=True)
            else:
                p.grad = numpy.array(to_numpy(blob.diff), copy=True)
        maps.append(p)
    return maps


def _in_place_after(net, i: int) -> str:
    """The last in-place layer after layer ``i`` that rewrote its top blob ('' if none)."""
    top = net.top_names[i][0] if net.top_names[i] else None
    last = ""
    for j in range(i + 1, len(net.layers)):
        if net.bottom_names[j][:1] == [top] and net.top_names[j][:1] == [top]:
            last = net.layers[j].name
    return last


def _first_in_place(net, i: int) -> bool:
    """Layer ``i`` is the first in-place layer on its blob (its δ_down is the blob's diff at the end)."""
    blob = net.top_names[i][0]
    for j in range(i):
        if net.bottom_names[j][:1] == [blob] and net.top_names[j][:1] == [blob]:
            return False
    return True


def layer_frame(solver, name: str, *, update_applied: bool = True, pending: bool = False) -> LayerFrame:
    """Host copies of what layer ``name`` computed in the last iteration (see the module doc).

    ``update_applied`` / ``pending`` as for the InnerProduct views
    (:func:`gui.model.frames.inner_product_views`): mid-iteration the param diffs are
    this iteration's raw gradient so far, and a layer whose backward has not run yet
    shows no gradients.
    """
    net = solver.net
    i = net.layer_index(name)
    layer = net.layers[i]
    frame = LayerFrame(layer=name, type=layer.type_name, index=i, pending_backward=pending,
                       formula=FORMULAS.get(layer.type_name, ""))
    frame.params = _params(solver, layer, update_applied, pending)
    if not frame.params:
        frame.notes.append(f"{name} ({layer.type_name}) {NO_PARAMS}")
    if layer.type_name == "BatchNorm":
        frame.notes.append(BATCHNORM_NOTE)
    bottoms, tops = net.bottoms_of(i), net.tops_of(i)
    frame.bottom_name = net.bottom_names[i][0] if net.bottom_names[i] else ""
    frame.top_name = net.top_names[i][0] if net.top_names[i] else ""
    frame.in_place = bool(frame.bottom_name) and frame.bottom_name == frame.top_name
    if bottoms:
        frame.bottom_shape = tuple(bottoms[0].shape)
        frame.num = bottoms[0].shape[0] if bottoms[0].num_axes else 1
    if tops:
        frame.top_shape = tuple(tops[0].shape)
        frame.num = frame.num or (tops[0].shape[0] if tops[0].num_axes else 1)
    _feature_maps(net, i, frame, bottoms, tops)
    _deltas(net, i, frame, bottoms, tops)
    if layer.type_name in ("Convolution", "Deconvolution"):
        _im2col_products(layer, frame)
    return frame


def _feature_maps(net, i: int, frame: LayerFrame, bottoms, tops) -> None:
    overwritten = _in_place_after(net, i)
    if bottoms and not frame.in_place:
        frame.input = _first(bottoms[0].data)
    elif frame.in_place:
        frame.missing["input"] = (f"{frame.layer} computes in place: its input '{frame.bottom_name}' "
                                  "was overwritten by its output")
    else:
        frame.missing["input"] = f"{frame.layer} has no input blob"
    if tops:
        frame.output = _first(tops[0].data)
        if overwritten and overwritten != frame.layer:
            frame.notes.append(f"The output '{frame.top_name}' is rewritten in place by {overwritten}: "
                               f"the output maps show {overwritten}'s output.")
    else:
        frame.missing["output"] = f"{frame.layer} has no output blob"


def _deltas(net, i: int, frame: LayerFrame, bottoms, tops) -> None:
    if frame.pending_backward:
        text = f"computed at {frame.layer}'s backward in this iteration (step on)"
        frame.missing.update(delta="δ " + text, delta_down="δ_down " + text)
        return
    if not net.layer_need_backward[i]:
        why = f"{frame.layer} runs no backward (nothing below it learns)"
        frame.missing.update(delta=why, delta_down=why)
        return
    captured = net.captured.get(frame.layer, {}) if frame.layer in net.capture_layers else {}
    top_blob = tops[0] if tops else None
    if frame.in_place:
        frame.missing["delta"] = ("δ arriving was overwritten in place by δ_down (one blob holds both); "
                                  "see δ_down")
    elif "top_diff" in captured:
        frame.delta = _first(captured["top_diff"])
    elif top_blob is not None and top_blob.has_diff:
        frame.delta = _first(top_blob.diff)
    else:
        frame.missing["delta"] = "δ appears after the first backward pass"
    if not bottoms:
        frame.missing["delta_down"] = f"{frame.layer} has no input"
    elif not net.bottom_need_backward[i][0]:
        frame.missing["delta_down"] = (f"No gradient flows into '{frame.bottom_name}': δ_down is not "
                                       f"computed for {frame.layer}")
    elif "bottom_diff" in captured:
        frame.delta_down = _first(captured["bottom_diff"])
    elif frame.in_place and not _first_in_place(net, i):
        frame.missing["delta_down"] = "δ_down was overwritten in place by the in-place layer below"
    elif bottoms[0].has_diff:
        frame.delta_down = _first(bottoms[0].diff)
    else:
        frame.missing["delta_down"] = "δ_down appears after the first backward pass"


def _shape(*dims: int) -> str:
    return "[" + "×".join(str(d) for d in dims) + "]"


def _im2col_products(layer, frame: LayerFrame) -> None:
    """The seed's three products in im2col form, with the layer's live shapes (per image,
    per group; the engine puts all images' columns side by side and sums them in one GEMM)."""
    g, k = layer.group, layer.kernel_dim
    (kh, kw) = layer.kernel
    n = layer.num
    per_group = f", per group (×{g})" if g > 1 else ""
    if layer.type_name == "Convolution":
        m, p = layer.num_output // g, layer.out_spatial_dim
        c, (h, w) = layer.channels, layer.input_shape
        frame.col_shape = tuple(layer.col_shape)
        geometry = (f"kernel {kh}×{kw}, stride {layer.stride[0]}×{layer.stride[1]}, pad {layer.pad[0]}×{layer.pad[1]}"
                    + (f", dilation {layer.dilation[0]}×{layer.dilation[1]}" if max(layer.dilation) > 1 else ""))
        frame.products = [
            (f"col[n] = im2col(a[n])  (per image, ×{n}; {geometry})",
             f"{_shape(c, h, w)} → {_shape(g * k, p)}  (C·kh·kw = {c}·{kh}·{kw} rows, Ho·Wo = {p} columns)"),
            (f"top[n] = W·col[n] + b{per_group}", f"{_shape(m, p)} = {_shape(m, k)}·{_shape(k, p)}"),
            (f"dW = Σₙ δ[n]·col[n]ᵀ  (summed over the {n} images{per_group})",
             f"{_shape(m, k)} = {_shape(m, p)}·{_shape(p, k)}"),
        ]
        if layer.bias_term:
            frame.products.append((f"db = Σₙ Σₚ δ[n]  (over the {n} images and {p} pixels)",
                                   f"{_shape(layer.num_output)} = Σ {_shape(n, layer.num_output, p)}"))
        frame.products.append((f"δ_down[n] = col2im(Wᵀ·δ[n]){per_group}",
                               f"{_shape(k, p)} = {_shape(k, m)}·{_shape(m, p)} → {_shape(c, h, w)}"))
        return
    # Deconvolution: the transpose; the columns are the top's (K = Co/g·kh·kw rows, H·W columns)
    c, (h, w) = layer.channels // g, layer.input_shape
    hw, (ho, wo) = h * w, layer.output_shape
    frame.col_shape = (g * k, hw)
    frame.products = [
        (f"col[n] = Wᵀ·a[n]{per_group}; top[n] = col2im(col[n]) + b",
         f"{_shape(k, hw)} = {_shape(k, c)}·{_shape(c, hw)} → {_shape(layer.num_output, ho, wo)}"),
        (f"dW = Σₙ a[n]·im2col(δ[n])ᵀ  (summed over the {n} images{per_group})",
         f"{_shape(c, k)} = {_shape(c, hw)}·{_shape(hw, k)}"),
    ]
    if layer.bias_term:
        frame.products.append(("db = Σₙ Σₚ δ[n]", f"{_shape(layer.num_output)} = Σ {_shape(n, layer.num_output, ho * wo)}"))
    frame.products.append((f"δ_down[n] = W·im2col(δ[n]){per_group}", f"{_shape(c, hw)} = {_shape(c, k)}·{_shape(k, hw)}"))
