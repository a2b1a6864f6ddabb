"""Caffe's ``Python`` layer type: a layer written in Python as a subclass of
``caffe.Layer`` (``python_param { module layer param_str }``), run by the engine.

Registered when engine.pycaffe is imported (Python layers are written against
pycaffe's API). As BVLC's PythonLayer: the class is made with the
LayerParameter, gets ``param_str`` and ``phase``, and its ``setup``, ``reshape``,
``forward`` and ``backward`` receive lists of pycaffe Blobs; ``self.blobs.add_blob``
creates parameters the solver trains. Python layers run on the CPU.
"""
from __future__ import annotations

import importlib

from ..errors import DeviceError, NetDefinitionError
from ..layer import Layer as EngineLayer
from ..layer import register
from ._blob import Blob, BlobCache, Layer


def _user_layer(param, phase: int) -> Layer:
    """An instance of the Python class ``python_param`` names."""
    spec = param.python_param
    where = f"layer '{param.name}' (Python)"
    if not spec.module or not spec.layer:
        raise NetDefinitionError(f"{where}: python_param needs both module and layer")
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        raise NetDefinitionError(f"{where}: cannot import module '{spec.module}' ({exc}); "
                                 f"is its folder on PYTHONPATH?") from None
    cls = getattr(module, spec.layer, None)
    if not isinstance(cls, type) or not issubclass(cls, Layer):
        raise NetDefinitionError(f"{where}: '{spec.module}.{spec.layer}' is not a subclass of caffe.Layer")
    instance = cls(param)
    instance.param_str = spec.param_str
    instance.phase = phase
    return instance


def _overrides(instance: Layer, method: str) -> bool:
    return getattr(type(instance), method, None) is not getattr(Layer, method, None)


@register("Python")
class PythonLayer(EngineLayer):
    """The engine side of a Python layer: calls the user's methods with pycaffe Blobs."""

    min_tops = 0

    def __init__(self, param, phase: int):
        super().__init__(param, phase)
        self.cache = BlobCache()
        self.instance = _user_layer(param, phase)
        self.instance._attach_engine_layer(self, self.cache)

    def _views(self, blobs) -> list[Blob]:
        return [self.cache.view(b) for b in blobs]

    def layer_setup(self, bottom, top):
        if self.device != "cpu":
            raise DeviceError(f"layer '{self.name}': Python layers run on the CPU only "
                              f"(build this net after caffe.set_mode_cpu())")
        if _overrides(self.instance, "setup"):
            self.instance.setup(self._views(bottom), self._views(top))

    def reshape(self, bottom, top):
        if _overrides(self.instance, "reshape"):
            self.instance.reshape(self._views(bottom), self._views(top))

    def forward(self, bottom, top):
        self._call("forward", self._views(bottom), self._views(top))

    def backward(self, top, propagate_down, bottom):
        self._call("backward", self._views(top), list(propagate_down), self._views(bottom))

    def _call(self, method: str, *args) -> None:
        run = getattr(self.instance, method, None)
        if run is None:
            raise NetDefinitionError(f"layer '{self.name}': the Python layer class "
                                     f"{type(self.instance).__name__} has no {method}()")
        run(*args)
