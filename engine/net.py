"""Net: layers wired by blob names, run forward and backward as Caffe does."""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Iterable, cast

import numpy

from . import backend, validate
from . import layers as _layers  # noqa: F401  (registers the layer types)
from .blob import Blob
from .errors import DataError, NetDefinitionError, NonFiniteError, ResourceError, ShapeError
from .layer import Layer, create_layer
from .proto import caffe_pb2
from .prototxt import parse_net, resolve_path
from .python_layers import access_of
from .splits import insert_splits

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def state_meets_rule(state: caffe_pb2.NetState, rule: caffe_pb2.NetStateRule) -> bool:
    """Caffe's StateMeetsRule: phase, level range and stages."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(s in stages for s in rule.stage) and not any(s in stages for s in rule.not_stage)


def filter_net(param: caffe_pb2.NetParameter, state: caffe_pb2.NetState) -> caffe_pb2.NetParameter:
    """The layers of ``param`` that ``state`` includes (Caffe's FilterNet)."""
    result = caffe_pb2.NetParameter()
    result.CopyFrom(param)
    del result.layer[:]
    for layer in param.layer:
        if layer.include and layer.exclude:
            raise NetDefinitionError(f"layer '{layer.name}' specifies both include and exclude rules")
        if layer.include:
            keep = any(state_meets_rule(state, r) for r in layer.include)
        else:
            keep = not any(state_meets_rule(state, r) for r in layer.exclude)
        if keep:
            result.layer.add().CopyFrom(layer)
    return result


def _legacy_inputs_to_layer(param: caffe_pb2.NetParameter) -> None:
    """Turn deprecated ``input:``/``input_shape``/``input_dim`` into an Input layer."""
    if not param.input:
        return
    layer = caffe_pb2.LayerParameter(name="input", type="Input")
    layer.top.extend(param.input)
    if param.input_shape:
        for shape in param.input_shape:
            layer.input_param.shape.add().CopyFrom(shape)
    elif param.input_dim:
        dims = list(param.input_dim)
        for k in range(len(param.input)):
            layer.input_param.shape.add().dim.extend(dims[4 * k:4 * k + 4])
    layers = [layer] + list(param.layer)
    del param.layer[:]
    for item in layers:
        param.layer.add().CopyFrom(item)
    del param.input[:], param.input_shape[:], param.input_dim[:]


def net_state(param: caffe_pb2.NetParameter, phase: int, level: int | None = None,
              stages: Iterable[str] = ()) -> caffe_pb2.NetState:
    """The NetState a net is built in, as Caffe's Net(file, phase, level, stages):
    the file's own ``state``, with ``phase`` set, ``stages`` added and ``level``
    set when given."""
    state = caffe_pb2.NetState()
    state.CopyFrom(param.state)
    state.phase = cast("caffe_pb2.Phase", phase)
    state.stage.extend(stages)
    if level is not None:
        state.level = level
    return state


def _upgraded_copy(param: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    """``param`` itself, or an upgraded copy when it uses Caffe's older formats."""
    from .upgrade import net_needs_upgrade, upgrade_net
    if not net_needs_upgrade(param):
        return param
    copy = caffe_pb2.NetParameter()
    copy.CopyFrom(param)
    upgrade_net(copy, "<net>")
    return copy


def _automatic_tops(layer: Layer, layer_param: caffe_pb2.LayerParameter) -> list[str]:
    """Caffe's AutoTopBlobs: a loss layer written without its top gets an anonymous
    one ("(automatic)"), so its loss still counts."""
    if not layer.is_loss:
        return []
    needed = max(layer.min_tops, layer.num_tops or 0)
    return ["(automatic)"] * max(0, needed - len(layer_param.top))


def _resolve_data_paths(param: caffe_pb2.NetParameter, relative_to: str | None) -> None:
    for layer in param.layer:
        if layer.HasField("hdf5_data_param") and layer.hdf5_data_param.source:
            layer.hdf5_data_param.source = resolve_path(layer.hdf5_data_param.source, relative_to)
        for owner, name in (("data_param", "source"), ("image_data_param", "source"),
                            ("image_data_param", "root_folder"), ("transform_param", "mean_file"),
                            ("data_param", "mean_file")):
            if layer.HasField(owner) and getattr(getattr(layer, owner), name):
                setattr(getattr(layer, owner), name, resolve_path(getattr(getattr(layer, owner), name), relative_to))


#: What a layer's numpy work raises on values or sizes it cannot handle (an overflow,
#: an array too big to allocate): turned into the engine's errors naming the layer.
_LAYER_FAILURES = (ArithmeticError, MemoryError, ValueError)


def _layer_failure(layer: Layer, phase: str, exc: Exception) -> Exception:
    kind = ResourceError if isinstance(exc, MemoryError) or "too big" in str(exc) else ShapeError
    return kind(f"layer '{layer.name}' ({layer.type_name}): {phase} failed: "
                f"{type(exc).__name__}: {exc or 'out of memory'}")


def _naming_file(exc: Exception, path: str | None) -> Exception:
    """``exc`` with the net file's path in front of its message (a net read from a file)."""
    if not path or path in str(exc):
        return exc
    try:
        return type(exc)(f"{path}: {exc}")
    except TypeError:  # an error type with its own constructor: keep it as it is
        return exc


class _MemoryTally:
    """What the blobs of a net being built take, against the memory available when
    the build began (an array is allocated lazily: the free memory does not show it)."""

    def __init__(self, device: str):
        self.device = device
        self.budget = validate.available_memory(device)
        self.total = 0
        self.seen: set[int] = set()

    def add(self, layer: Layer, tops: list[Blob], bottoms: list[Blob]) -> None:
        biggest, biggest_bytes = None, 0
        for blob in list(tops) + list(layer.blobs):
            if id(blob) in self.seen or any(blob is b for b in bottoms):
                continue
            self.seen.add(id(blob))
            nbytes = validate.shape_bytes(blob.shape, blob.dtype.itemsize) * 2
            self.total += nbytes
            if nbytes > biggest_bytes:
                biggest, biggest_bytes = blob, nbytes
        if self.budget is not None and biggest is not None and self.total > self.budget:
            label = f"blob '{biggest.name}'" if biggest.name else "a parameter blob"
            raise ResourceError(
                f"layer '{layer.name}' ({layer.type_name}): {label} of shape {biggest.shape} needs "
                f"{validate.format_bytes(biggest_bytes)} (data and diff), and the net's blobs so far "
                f"{validate.format_bytes(self.total)}: more than the {validate.format_bytes(self.budget)} "
                f"of memory available")


class Net:
    """A network built from a NetParameter (pycaffe's ``caffe.Net``).

    ``Net(prototxt_path_or_text, phase=TRAIN, weights=None, level=None, stages=())``:
    the layers whose include / exclude rules the state (phase, level, stages, added
    to the file's own ``state``) meets, as Caffe's FilterNet. ``blobs`` and
    ``params`` are ordered dicts by blob / layer name. ``python_layers``: where the
    modules of ``type: "Python"`` layers may be imported from (engine.python_layers:
    a list of allowed folders or a PythonLayerAccess; None: only the folders
    ``engine.allow_python_layers`` allowed). Kept as ``self.python_layers`` for the
    copies made of this net.
    """

    def __init__(self, source, phase: int = TRAIN, weights: str | None = None, *,
                 level: int | None = None, stages: Iterable[str] = (), dtype=numpy.float32,
                 device: str | None = None, python_layers: Any = None):
        given: object = phase
        if isinstance(given, (str, os.PathLike)) and weights in (TRAIN, TEST):  # pycaffe's legacy
            phase, weights = cast(int, weights), os.fspath(given)  # Net(proto, weights, phase)
        if isinstance(source, caffe_pb2.NetParameter):
            param, self.path = _upgraded_copy(source), None
        else:
            param, self.path = parse_net(source)
        self.phase = phase
        self.dtype = numpy.dtype(dtype)
        self.device = backend.normalize_device(device or backend.current_mode())
        self.python_layers = access_of(python_layers).near(self.path)
        if self.device == "gpu":
            backend.cupy_module()
        param = filter_net(param, net_state(param, phase, level, stages))
        _legacy_inputs_to_layer(param)
        _resolve_data_paths(param, self.path)
        self.param = param
        self.name = param.name
        try:
            self._build(insert_splits(param))
        except (NetDefinitionError, ShapeError, DataError, ResourceError) as exc:
            raise _naming_file(exc, self.path) from None
        self._input_shapes = self._current_input_shapes()  # forward() reshapes when they change
        self.capture_layers: set[str] = set()
        self.captured: dict[str, dict[str, Any]] = {}
        self.loss = 0.0
        if weights:
            self.copy_from(weights)

    # -- construction --------------------------------------------------
    def _build(self, param: caffe_pb2.NetParameter) -> None:
        self.layers: list[Layer] = []
        self.layer_params: list[caffe_pb2.LayerParameter] = []
        self.blobs: "OrderedDict[str, Blob]" = OrderedDict()
        self.bottom_names: list[list[str]] = []
        self.top_names: list[list[str]] = []
        self._bottoms: list[list[Blob]] = []
        self._tops: list[list[Blob]] = []
        self._loss_weights: list[list[float]] = []
        self.inputs: list[str] = []
        self.params: "OrderedDict[str, list[Blob]]" = OrderedDict()
        self.learnable_params: list[Blob] = []
        self.param_display_names: list[str] = []
        self.lr_mults: list[float] = []
        self.decay_mults: list[float] = []
        self._param_owner: dict[str, tuple[Blob, caffe_pb2.ParamSpec]] = {}
        available: "OrderedDict[str, None]" = OrderedDict()
        blob_needs_backward: dict[str, bool] = {}
        self.layer_need_backward: list[bool] = []
        self.bottom_need_backward: list[list[bool]] = []
        names_seen = set()
        memory = _MemoryTally(self.device)
        for layer_param in param.layer:
            if layer_param.name in names_seen:
                raise NetDefinitionError(f"two layers are named '{layer_param.name}'")
            names_seen.add(layer_param.name)
            # Caffe: a layer's own `phase` field wins over the net's
            layer = create_layer(layer_param, layer_param.phase if layer_param.HasField("phase") else self.phase,
                                 python_layers=self.python_layers, net=self.path or param.name)
            layer.dtype, layer.device = self.dtype, self.device
            bottoms, need_flags = [], []
            for j, name in enumerate(layer_param.bottom):
                if name not in self.blobs:  # produced by a layer excluded in this phase
                    raise NetDefinitionError(
                        f"layer '{layer.name}' ({layer.type_name}): bottom blob '{name}' is not "
                        f"produced by any earlier layer")
                bottoms.append(self.blobs[name])
                need = blob_needs_backward.get(name, False)
                if len(layer_param.propagate_down):
                    if len(layer_param.propagate_down) != len(layer_param.bottom):
                        raise NetDefinitionError(
                            f"layer '{layer.name}': propagate_down must be given once per bottom")
                    need = bool(layer_param.propagate_down[j])
                need_flags.append(need)
                available.pop(name, None)
            tops = []
            top_names = list(layer_param.top) + _automatic_tops(layer, layer_param)
            for j, name in enumerate(top_names):
                if j >= len(layer_param.top):  # Caffe's anonymous top: in blobs, not an output
                    blob = Blob((), dtype=self.dtype, device=self.device)
                    blob.name = name
                    self.blobs.setdefault(name, blob)
                    tops.append(blob)
                    continue
                if j < len(layer_param.bottom) and layer_param.bottom[j] == name:
                    tops.append(self.blobs[name])  # computed in place
                elif name in self.blobs:
                    raise NetDefinitionError(
                        f"layer '{layer.name}': top blob '{name}' is produced by more than one layer")
                else:
                    blob = Blob((), dtype=self.dtype, device=self.device)
                    blob.name = name
                    self.blobs[name] = blob
                    tops.append(blob)
                    if layer_param.type == "Input":
                        self.inputs.append(name)
                available[name] = None
            try:
                layer.setup(bottoms, tops)
            except (IndexError, ValueError) as exc:
                raise ShapeError(f"layer '{layer.name}' ({layer.type_name}): {exc}") from None
            except (ResourceError, MemoryError) as exc:
                raise ResourceError(f"layer '{layer.name}' ({layer.type_name}): "
                                    f"{exc or 'out of memory while setting it up'}") from None
            except ArithmeticError as exc:  # a parameter whose arithmetic overflows (exp of 1e30 ...)
                raise NetDefinitionError(f"layer '{layer.name}' ({layer.type_name}): its parameters cannot be "
                                         f"computed with: {type(exc).__name__}: {exc}") from None
            memory.add(layer, tops, bottoms)
            self._loss_weights.append(self._top_loss_weights(layer, layer_param, len(tops)))
            # Caffe: a bottom blob that needs backward makes the layer need it, propagate_down or not
            need_backward = any(blob_needs_backward.get(name, False) for name in layer_param.bottom)
            for j in range(len(layer.blobs)):
                lr_mult = self._append_param(layer, layer_param, j)
                layer.param_propagate_down[j] = lr_mult != 0
                need_backward = need_backward or lr_mult != 0
            for name in top_names:
                blob_needs_backward[name] = need_backward
            self.layers.append(layer)
            self.layer_params.append(layer_param)
            self.bottom_names.append(list(layer_param.bottom))
            self.top_names.append(top_names)
            self._bottoms.append(bottoms)
            self._tops.append(tops)
            self.layer_need_backward.append(need_backward)
            self.bottom_need_backward.append(need_flags)
            if layer.blobs:
                self.params[layer.name] = layer.blobs
        self.outputs = sorted(available)  # Caffe keeps the remaining blobs in a std::set
        self._prune_backward(param.force_backward)
        self._layer_index = {layer.name: i for i, layer in enumerate(self.layers)}

    @staticmethod
    def _top_loss_weights(layer: Layer, layer_param, num_tops: int) -> list[float]:
        weights = list(layer_param.loss_weight)
        if weights and len(weights) != num_tops:
            raise NetDefinitionError(
                f"layer '{layer.name}': loss_weight must be given once per top ({num_tops}), "
                f"got {len(weights)}")
        if not weights:
            weights = [1.0 if (layer.is_loss and j == 0) else 0.0 for j in range(num_tops)]
        return weights

    def _append_param(self, layer: Layer, layer_param, index: int) -> float:
        spec = layer_param.param[index] if index < len(layer_param.param) else caffe_pb2.ParamSpec()
        name = spec.name
        self.param_display_names.append(f"{layer.name}.{index}")
        if name and name in self._param_owner:
            owner, owner_spec = self._param_owner[name]
            mine = layer.blobs[index]
            strict = spec.share_mode == caffe_pb2.ParamSpec.STRICT
            if (strict and owner.shape != mine.shape) or owner.count() != mine.count():
                raise ShapeError(
                    f"layer '{layer.name}': shared parameter '{name}' has shape {mine.shape} here but "
                    f"{owner.shape} where it was first defined")
            if owner.shape != mine.shape:  # PERMISSIVE, same count: Caffe shares the memory under both shapes
                raise NetDefinitionError(
                    f"layer '{layer.name}': shared parameter '{name}' has shape {mine.shape} here but "
                    f"{owner.shape} where it was first defined (share_mode PERMISSIVE, {mine.count()} values "
                    f"each): Backprop Studio shares a parameter only between layers that give it the same "
                    f"shape; reshape one layer's parameter to {owner.shape}")
            owner_index = next(k for k, b in enumerate(self.learnable_params) if b is owner)
            for field, values in (("lr_mult", self.lr_mults), ("decay_mult", self.decay_mults)):
                if not spec.HasField(field):
                    continue
                if owner_spec.HasField(field) and getattr(spec, field) != getattr(owner_spec, field):
                    raise NetDefinitionError(
                        f"layer '{layer.name}': shared parameter '{name}' has {field} "
                        f"{getattr(spec, field)} here but {getattr(owner_spec, field)} where it was set before")
                # Caffe: the first layer that sets a shared param's multiplier sets it for all
                setattr(owner_spec, field, getattr(spec, field))
                values[owner_index] = getattr(spec, field)
            layer.blobs[index] = owner
            self.param_display_names.pop()
            return spec.lr_mult  # Caffe: this layer's own spec decides its param_propagate_down
        blob = layer.blobs[index]
        self.learnable_params.append(blob)
        self.lr_mults.append(spec.lr_mult)
        self.decay_mults.append(spec.decay_mult)
        if name:
            owner_spec = caffe_pb2.ParamSpec()
            owner_spec.CopyFrom(spec)
            self._param_owner[name] = (blob, owner_spec)
        return spec.lr_mult

    def _prune_backward(self, force_backward: bool) -> None:
        """Caffe's analysis: skip backward where no loss depends on the layer."""
        under_loss: set[str] = set()
        skip_backprop: set[str] = set()
        for i in reversed(range(len(self.layers))):
            contributes, skip_propagate = False, True
            for j, name in enumerate(self.top_names[i]):
                if self._loss_weights[i][j] or name in under_loss:
                    contributes = True
                if name not in skip_backprop:
                    skip_propagate = False
                if contributes and not skip_propagate:
                    break
            if self.layer_need_backward[i] and skip_propagate:
                self.layer_need_backward[i] = False
                self.bottom_need_backward[i] = [False] * len(self.bottom_names[i])
            if not contributes:
                self.layer_need_backward[i] = False
            for j, name in enumerate(self.bottom_names[i]):
                if contributes:
                    under_loss.add(name)
                else:
                    self.bottom_need_backward[i][j] = False
                if not self.bottom_need_backward[i][j]:
                    skip_backprop.add(name)
        if force_backward:
            for i, layer in enumerate(self.layers):
                self.layer_need_backward[i] = True
                self.bottom_need_backward[i] = [
                    need or layer.allow_force_backward(j) for j, need in enumerate(self.bottom_need_backward[i])]
                layer.param_propagate_down = [True] * len(layer.blobs)

    # -- running -------------------------------------------------------
    def layer_index(self, name: str) -> int:
        try:
            return self._layer_index[name]
        except KeyError:
            raise KeyError(f"no layer named '{name}' (layers: {', '.join(self._layer_index)})") from None

    def bottoms_of(self, i: int) -> list[Blob]:
        return self._bottoms[i]

    def tops_of(self, i: int) -> list[Blob]:
        return self._tops[i]

    def loss_weights_of(self, i: int) -> list[float]:
        return self._loss_weights[i]

    _loss_tops = None

    def _loss_tops_of(self, i: int) -> list:
        """[(top blob, loss weight)] of layer ``i`` for its non-zero weights (bound once)."""
        bound = self._loss_tops
        if bound is None or len(bound) != len(self.layers):
            bound = self._loss_tops = [
                [(blob, weight) for blob, weight in zip(tops, weights) if weight]
                for tops, weights in zip(self._tops, self._loss_weights)]
        return bound[i]

    def forward_layer(self, i: int) -> float:
        """Run layer ``i`` forward; returns its weighted loss contribution."""
        layer = self.layers[i]
        shapes_before = [blob.shape for blob in self._tops[i]] if layer.reshapes_in_forward else None
        try:
            layer.forward(self._bottoms[i], self._tops[i])
        except _LAYER_FAILURES as exc:
            raise _layer_failure(layer, "forward", exc) from None
        if shapes_before is not None and shapes_before != [blob.shape for blob in self._tops[i]]:
            self._reshape_layers(i + 1)
        loss = 0.0
        for blob, weight in self._loss_tops_of(i):
            data = blob.data  # a one-element sum is the element itself: no reduction call
            loss += weight * (data.item() if data.size == 1 else data.sum().item())
        return loss

    def backward_layer(self, i: int) -> None:
        """Run layer ``i`` backward if it needs it (top diffs of loss tops = loss weight)."""
        if not self.layer_need_backward[i]:
            return
        tops = self._tops[i]
        for blob, weight in self._loss_tops_of(i):
            blob.diff.fill(weight)
        try:
            self.layers[i].backward(tops, self.bottom_need_backward[i], self._bottoms[i])
        except _LAYER_FAILURES as exc:
            raise _layer_failure(self.layers[i], "backward", exc) from None
        if self.capture_layers and self.layers[i].name in self.capture_layers:
            self._capture(i)

    def _capture(self, i: int) -> None:
        """Copy what the backward of layer ``i`` saw and sent, before later layers
        (an in-place ReLU below, the solver) overwrite the shared arrays."""
        store = self.captured.setdefault(self.layers[i].name, {})
        for key, blob in (("top_diff", self._tops[i][0]), ("bottom_diff", self._bottoms[i][0])):
            buf = store.get(key)
            if buf is None or buf.shape != blob.diff.shape or type(buf) is not type(blob.diff):
                store[key] = blob.diff.copy()
            else:
                buf[...] = blob.diff

    def forward(self, start: str | None = None, end: str | None = None, **inputs) -> dict:
        """Run forward (optionally from layer ``start`` to ``end``); inputs by blob name.
        Returns the outputs as {name: data array}; the loss is in ``self.loss``.
        An input blob reshaped since the last pass (pycaffe's
        ``net.blobs['data'].reshape(...)``) reshapes the net first, as Caffe's
        Forward does."""
        self._reshape_if_inputs_changed()
        for name, value in inputs.items():
            self._set_input(name, value)
        first = self.layer_index(start) if start else 0
        last = self.layer_index(end) if end else len(self.layers) - 1
        loss = 0.0
        for i in range(first, last + 1):
            loss += self.forward_layer(i)
        self.loss = loss
        return {name: self.blobs[name].data for name in self.outputs}

    def _set_input(self, name: str, value) -> None:
        """``blobs[name].data[...] = value`` with errors that name the blob and shapes."""
        blob = self.blobs.get(name)
        if blob is None:
            raise NetDefinitionError(f"forward(): the net has no blob named '{name}' "
                                     f"(inputs: {', '.join(self.inputs) or 'none'})")
        try:
            blob.data[...] = value
        except ValueError:
            raise ShapeError(f"forward(): blob '{name}' has shape {blob.shape} but the value given has shape "
                             f"{numpy.shape(value)} (reshape the blob and call net.reshape() first)") from None

    def backward(self, start: str | None = None, end: str | None = None) -> dict:
        """Run backward from ``start`` (default: the last layer) down to ``end``.
        Returns the input blobs' diffs."""
        first = self.layer_index(start) if start else len(self.layers) - 1
        last = self.layer_index(end) if end else 0
        for i in range(first, last - 1, -1):
            self.backward_layer(i)
        return {name: self.blobs[name].diff for name in self.inputs}

    def forward_backward(self) -> float:
        """Forward then backward; returns the loss."""
        self._reshape_if_inputs_changed()
        forward_layer, backward_layer = self.forward_layer, self.backward_layer
        loss = 0.0
        for i in range(len(self.layers)):
            loss += forward_layer(i)
        self.loss = loss
        for i in range(len(self.layers) - 1, -1, -1):
            backward_layer(i)
        return self.loss

    def clear_param_diffs(self) -> None:
        for blob in self.learnable_params:
            blob.clear_diff()

    def update(self) -> None:
        """data -= diff for every learnable parameter (Caffe's Net::Update)."""
        for blob in self.learnable_params:
            blob.data -= blob.diff

    def reshape(self) -> None:
        """Propagate new input shapes through every layer (a shape error names the layer)."""
        self._reshape_layers(0)
        self._input_shapes = self._current_input_shapes()

    def _reshape_layers(self, start: int) -> None:
        """Reshape the layers from ``start`` on, in order (a shape error names the layer)."""
        for i in range(start, len(self.layers)):
            layer = self.layers[i]
            try:
                layer.reshape(self._bottoms[i], self._tops[i])
            except (IndexError, ValueError) as exc:
                shapes = ", ".join(f"'{n}' {b.shape}" for n, b in zip(self.bottom_names[i], self._bottoms[i]))
                raise ShapeError(f"layer '{layer.name}' ({layer.type_name}) cannot take its input shapes "
                                 f"({shapes or 'no bottoms'}): {exc}") from None

    _input_shapes: tuple | None = None

    def _current_input_shapes(self) -> tuple:
        blobs = self.blobs
        return tuple(blobs[name].shape for name in self.inputs)

    def _reshape_if_inputs_changed(self) -> None:
        """Caffe reshapes every layer on every forward; the engine does it when an
        input blob's shape changed since the last (re)shaping."""
        if not self.inputs:
            return
        if self._current_input_shapes() != self._input_shapes:
            self.reshape()

    # -- weights and devices ---------------------------------------------
    def share_weights(self, other: "Net") -> None:
        """Use ``other``'s parameter blobs for layers of the same name (test nets), as
        Caffe's ShareTrainedLayersWith: counts and shapes must match."""
        mine = {layer.name: layer for layer in self.layers}
        for source_layer in other.layers:
            layer = mine.get(source_layer.name)
            if layer is None:
                continue
            source = source_layer.blobs
            if len(source) != len(layer.blobs):
                raise NetDefinitionError(
                    f"layer '{layer.name}' has {len(layer.blobs)} parameter blob(s) here but "
                    f"{len(source)} in the net it shares weights with")
            for j, blob in enumerate(layer.blobs):
                if source[j].shape != blob.shape:
                    raise ShapeError(
                        f"layer '{layer.name}': cannot share parameter {j}: its shape is {blob.shape} here "
                        f"but {source[j].shape} in the net it shares weights with")
                layer.blobs[j] = source[j]
            if layer.blobs:
                self.params[layer.name] = layer.blobs

    def to(self, device: str) -> "Net":
        """Move every blob and parameter to ``device`` ('cpu' or 'gpu') keeping values."""
        device = backend.normalize_device(device)
        if device == "gpu":
            backend.cupy_module()
        seen = set()
        for blob in list(self.blobs.values()) + [b for bs in self.params.values() for b in bs]:
            if id(blob) not in seen:
                seen.add(id(blob))
                blob.to(device)
        for i, layer in enumerate(self.layers):
            layer.device = device
            for blob in layer.blobs:
                blob.to(device)
            if layer.type_name == "Split":
                layer.reshape(self._bottoms[i], self._tops[i])
        for store in self.captured.values():
            for key in list(store):
                store[key] = backend.to_device(store[key], device)
        self.device = device
        return self

    def copy_from(self, path: str):
        """Load weights from a .caffemodel or .caffemodel.h5 file, by layer name.
        Returns an ``engine.io.WeightsReport`` (layers copied, ignored, missing)."""
        from . import io
        return io.load_weights(self, os.fspath(path))

    def save(self, path: str) -> None:
        """Write the weights as .caffemodel (binary) or .caffemodel.h5, by suffix."""
        from . import io
        io.save_weights(self, os.fspath(path))

    # -- diagnosis -----------------------------------------------------
    def first_nonfinite(self, iteration: int = 0) -> NonFiniteError | None:
        """The first layer, in forward then backward order, whose outputs hold NaN/inf."""
        def bad(array) -> bool:
            return not backend.get_array_module(array).isfinite(array).all().item()
        for i in range(len(self.layers)):
            for name, blob in zip(self.top_names[i], self._tops[i]):
                if bad(blob.data):
                    return NonFiniteError(iteration, self.layers[i].name, name, "forward")
        for i in reversed(range(len(self.layers))):
            if not self.layer_need_backward[i]:
                continue
            for name, blob in zip(self.bottom_names[i], self._bottoms[i]):
                if bad(blob.diff):
                    return NonFiniteError(iteration, self.layers[i].name, name, "backward")
            for j, blob in enumerate(self.layers[i].blobs):
                if bad(blob.diff):
                    return NonFiniteError(iteration, self.layers[i].name, f"{self.layers[i].name}.param{j}",
                                          "backward")
        return None

    def __repr__(self) -> str:
        return f"Net('{self.name}', {len(self.layers)} layers, phase={'TRAIN' if self.phase == TRAIN else 'TEST'})"
