"""Backprop Studio's engine: a Caffe-faithful neural-network engine in numpy (CPU)
and cupy (GPU), with a pycaffe-style API.

>>> import engine
>>> solver = engine.get_solver("resources/examples/spiral_mlp/solver.prototxt")
>>> solver.step(100)
"""
from .backend import gpu_status, set_mode_cpu, set_mode_gpu
from .blob import Blob
from .errors import (
                     DataError,
                     DeviceError,
                     EngineError,
                     LabelError,
                     NetDefinitionError,
                     NonFiniteError,
                     PrototxtError,
                     ShapeError,
)
from .events import Event
from .gradcheck import GradientCheckResult, check_layer, check_net
from .layer import Layer, register, supported_types
from .net import TEST, TRAIN, Net
from .python_layers import (
                     PythonLayerAccess,
                     PythonLayerError,
                     PythonLayerRefused,
                     allow_python_layers,
                     allowed_python_layer_folders,
                     revoke_python_layers,
)
from .solver import Solver, get_solver

__version__ = "0.1.0"

gradcheck = check_layer

__all__ = [
    "Blob", "Net", "Solver", "Layer", "Event", "get_solver", "set_mode_cpu", "set_mode_gpu",
    "gpu_status", "TRAIN", "TEST", "register", "supported_types", "check_layer", "check_net",
    "gradcheck", "GradientCheckResult", "EngineError", "PrototxtError", "NetDefinitionError",
    "ShapeError", "LabelError", "DataError", "DeviceError", "NonFiniteError", "__version__",
    "allow_python_layers", "revoke_python_layers", "allowed_python_layer_folders", "PythonLayerAccess",
    "PythonLayerRefused", "PythonLayerError",
]
