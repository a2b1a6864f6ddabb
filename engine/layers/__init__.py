"""Layer types, one per module, each registered under its Caffe type name."""
from importlib import import_module

_MODULES = (
    "input", "dummy_data", "memory_data", "builtin_data", "hdf5_data", "split",
    "inner_product", "relu", "sigmoid", "tanh", "softmax", "softmax_with_loss",
    "euclidean_loss", "accuracy", "dropout",
    "convolution", "pooling", "flatten", "reshape", "concat", "eltwise", "bias", "scale",
)
for _name in _MODULES:
    import_module(f"{__name__}.{_name}")

try:  # layers added by later work (convolution, pooling, shape layers)
    import_module(f"{__name__}.extra")
except ModuleNotFoundError as exc:  # pragma: no cover - only before they land
    if exc.name != f"{__name__}.extra":
        raise
