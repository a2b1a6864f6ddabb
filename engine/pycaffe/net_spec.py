"""``caffe.net_spec``: write a net in Python and get its NetParameter.

    n = NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[64, 1, 28, 28]), dict(dim=[64])], ntop=2)
    n.ip = L.InnerProduct(n.data, num_output=10, weight_filler=dict(type='xavier'))
    n.loss = L.SoftmaxWithLoss(n.ip, n.label)
    text = str(n.to_proto())

``L.<Type>(*bottoms, **settings)`` makes a layer of that Caffe type: a setting
goes into the layer's ``<type>_param`` when that message has the field, else into
the LayerParameter itself (``param``, ``include``, ``loss_weight``, ``name`` ...);
``ntop`` gives the number of tops (0 gives the layer itself), ``in_place=True``
writes the top over the bottom. A top is named by the NetSpec attribute it is
assigned to, else after its layer type (``Convolution1``); a layer is named
after its first top. ``P.<Type>.<ENUM>`` reads an enum value, e.g.
``P.Pooling.MAX``.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from ..proto import caffe_pb2 as _caffe_pb2

caffe_pb2: Any = _caffe_pb2  # a generated module: no static types


def param_name_dict() -> dict[str, str]:
    """Layer type -> the prefix of its ``<prefix>_param`` field in LayerParameter
    (e.g. 'InnerProduct' -> 'inner_product')."""
    by_message = {}
    for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param") and field.message_type is not None:
            by_message[field.message_type.name] = field.name[:-len("_param")]
    return {message[:-len("Parameter")]: prefix for message, prefix in by_message.items()
            if message.endswith("Parameter")}


_PARAM_PREFIX = param_name_dict()


def _set_scalar(message, name: str, value) -> None:
    field = message.DESCRIPTOR.fields_by_name.get(name)
    if field is not None and field.type == FieldDescriptor.TYPE_ENUM and isinstance(value, str):
        value = field.enum_type.values_by_name[value].number
    setattr(message, name, value)


def _append(message, name: str, values: list) -> None:
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.type == FieldDescriptor.TYPE_ENUM:
        values = [field.enum_type.values_by_name[v].number if isinstance(v, str) else v for v in values]
    getattr(message, name).extend(values)


def assign_proto(message, name: str, value) -> None:
    """Set field ``name`` of ``message`` from a Python value: dicts fill sub-messages,
    lists fill repeated fields (a single value fills a one-element repeated field)."""
    field = message.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        raise AttributeError(f"{message.DESCRIPTOR.name} has no field '{name}'")
    repeated = field.is_repeated
    if repeated and not isinstance(value, (list, tuple)):
        value = [value]
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], dict):
            for item in value:
                entry = getattr(message, name).add()
                for key, sub in item.items():
                    assign_proto(entry, key, sub)
        else:
            _append(message, name, list(value))
    elif isinstance(value, dict):
        for key, sub in value.items():
            assign_proto(getattr(message, name), key, sub)
    else:
        _set_scalar(message, name, value)


class Top:
    """One output of a Function (a layer call); its ``n``-th top."""

    def __init__(self, fn: "Function", n: int):
        self.fn = fn
        self.n = n

    def to_proto(self) -> Any:
        """The NetParameter of every layer this top depends on."""
        return to_proto(self)

    def _to_proto(self, layers, names, autonames) -> None:
        self.fn._to_proto(layers, names, autonames)


class Function:
    """A layer call ``L.<type>(*inputs, **params)``, not yet a LayerParameter."""

    def __init__(self, type_name: str, inputs: tuple, params: dict):
        self.type_name = type_name
        for index, item in enumerate(inputs):
            if not isinstance(item, Top):
                raise TypeError(f"{type_name} input {index} is not a Top (type is {type(item)})")
        self.inputs = inputs
        self.params = dict(params)
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _get_name(self, names, autonames) -> str:
        if self not in names:
            if self.ntop > 0:
                names[self] = self._get_top_name(self.tops[0], names, autonames)
            else:
                autonames[self.type_name] += 1
                names[self] = self.type_name + str(autonames[self.type_name])
        return names[self]

    def _get_top_name(self, top: Top, names, autonames) -> str:
        if top not in names:
            autonames[top.fn.type_name] += 1
            names[top] = top.fn.type_name + str(autonames[top.fn.type_name])
        return names[top]

    def _to_proto(self, layers, names, autonames) -> None:
        if self in layers:
            return
        bottom_names = []
        for item in self.inputs:
            item._to_proto(layers, names, autonames)
            bottom_names.append(layers[item.fn].top[item.n])
        layer = caffe_pb2.LayerParameter()
        layer.type = self.type_name
        layer.bottom.extend(bottom_names)
        if self.in_place:
            layer.top.extend(layer.bottom)
        else:
            layer.top.extend(self._get_top_name(top, names, autonames) for top in self.tops)
        layer.name = self._get_name(names, autonames)
        for key, value in self.params.items():
            self._assign(layer, key, value)
        layers[self] = layer

    def _assign(self, layer: Any, key: str, value) -> None:
        """``<type>_param.<key>`` when that exists, else the LayerParameter's own field."""
        if not key.endswith("param"):
            prefix = _PARAM_PREFIX.get(self.type_name)
            if prefix is not None:
                sub = getattr(layer, prefix + "_param")
                if key in sub.DESCRIPTOR.fields_by_name:
                    assign_proto(sub, key, value)
                    return
        assign_proto(layer, key, value)


def to_proto(*tops: Top) -> Any:
    """The NetParameter of the layers the given tops depend on, auto-named."""
    layers: "OrderedDict[Function, Any]" = OrderedDict()
    autonames: Counter = Counter()
    for top in tops:
        top.fn._to_proto(layers, {}, autonames)
    net = caffe_pb2.NetParameter()
    net.layer.extend(layers.values())
    return net


class NetSpec:
    """Named tops, in assignment order: ``n.conv1 = L.Convolution(n.data, ...)``;
    ``n.to_proto()`` gives the NetParameter with those names."""

    def __init__(self) -> None:
        super().__setattr__("tops", OrderedDict())

    def __setattr__(self, name: str, value: Any) -> None:
        self.tops[name] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self.tops[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __getitem__(self, item: str) -> Any:
        return self.__getattr__(item)

    def __delitem__(self, name: str) -> None:
        del self.tops[name]

    def keys(self) -> list[str]:
        return list(self.tops.keys())

    def vals(self) -> list[Any]:
        return list(self.tops.values())

    def to_proto(self) -> Any:
        names = {top: name for name, top in self.tops.items()}
        autonames: Counter = Counter()
        layers: "OrderedDict[Function, Any]" = OrderedDict()
        for top in self.tops.values():
            top._to_proto(layers, names, autonames)
        net = caffe_pb2.NetParameter()
        net.layer.extend(layers.values())
        return net


class Layers:
    """``L.<Type>(*bottoms, **params)``: a Top, a tuple of Tops (ntop > 1), or the
    Function itself (ntop == 0)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def layer_fn(*args, **kwargs):
            fn = Function(name, args, kwargs)
            if fn.ntop == 0:
                return fn
            if fn.ntop == 1:
                return fn.tops[0]
            return fn.tops
        return layer_fn


class Parameters:
    """``P.<Type>.<NAME>``: a value of ``<Type>Parameter``, e.g. ``P.Pooling.MAX``."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        message = getattr(caffe_pb2, name + "Parameter")

        class Param:
            def __getattr__(self, param_name: str):
                return getattr(message, param_name)
        return Param()


layers = Layers()
params = Parameters()
