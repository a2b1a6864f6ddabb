"""Python: Caffe's layer written in Python (``python_param { module layer param_str }``).

The class ``module.layer`` is a subclass of ``caffe.Layer`` (engine.pycaffe.Layer).
As BVLC's PythonLayer, it is made with the LayerParameter, gets ``param_str`` and
``phase``, and its ``setup``, ``reshape``, ``forward`` and ``backward(top,
propagate_down, bottom)`` receive lists of pycaffe Blobs (``data``, ``diff``,
``reshape``, ``count``, ``num`` ...); ``self.blobs.add_blob(*shape)`` gives it
parameters the solver trains. To the net it is a layer like any other (stepped,
timed, trapped on NaN, rewound, gradient-checked). Its module is imported only
as the net's ``python_layers`` access allows (engine.python_layers). CPU only.
"""
from __future__ import annotations

from typing import Any

from ..errors import DeviceError, EngineError, NetDefinitionError
from ..layer import Layer, register


def _overrides(instance: Any, base: type, method: str) -> bool:
    return getattr(type(instance), method, None) is not getattr(base, method, None)


@register("Python")
class PythonLayer(Layer):
    """The engine side of a Python layer: calls the user's methods with pycaffe Blobs."""

    min_tops = 0

    def __init__(self, param, phase: int, python_layers: Any = None, net: str | None = None):
        super().__init__(param, phase)
        from .. import python_layers as consent
        from ..pycaffe._blob import BlobCache
        from ..pycaffe._blob import Layer as PyCaffeLayer
        self._base = PyCaffeLayer
        self.access = consent.access_of(python_layers)
        cls = consent.layer_class(param, self.access, net)
        self.cache = BlobCache()
        self.instance = self._user_call("__init__", cls, param)
        self.instance.param_str = param.python_param.param_str
        self.instance.phase = phase
        self.instance._attach_engine_layer(self, self.cache)

    def _views(self, blobs) -> list:
        return [self.cache.view(b) for b in blobs]

    def _user_call(self, method: str, run, *args) -> Any:
        """Run the user's code; outside pycaffe an error it raises becomes a
        PythonLayerError naming the layer, the method and the file:line."""
        if self.access.sys_path:  # pycaffe: the script sees its own exception, as in Caffe
            return run(*args)
        try:
            return run(*args)
        except EngineError:
            raise
        except Exception as exc:
            from ..python_layers import user_error
            raise user_error(self.name, method, exc) from exc

    def _check_device(self) -> None:
        if self.device != "cpu":
            raise DeviceError(f"layer '{self.name}': Python layers run on the CPU only "
                              f"(build or move this net to the CPU)")

    def layer_setup(self, bottom, top):
        self._check_device()
        if _overrides(self.instance, self._base, "setup"):
            self._user_call("setup", self.instance.setup, self._views(bottom), self._views(top))

    def reshape(self, bottom, top):
        if _overrides(self.instance, self._base, "reshape"):
            self._user_call("reshape", self.instance.reshape, self._views(bottom), self._views(top))

    def forward(self, bottom, top):
        self._check_device()
        self._user_call("forward", self._method("forward"), self._views(bottom), self._views(top))

    def backward(self, top, propagate_down, bottom):
        self._check_device()
        self._user_call("backward", self._method("backward"), self._views(top), list(propagate_down),
                        self._views(bottom))

    def _method(self, name: str):
        run = getattr(self.instance, name, None)
        if run is None:
            raise NetDefinitionError(f"layer '{self.name}': the Python layer class "
                                     f"{type(self.instance).__name__} has no {name}()")
        return run
