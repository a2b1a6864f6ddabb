"""Layer types, one per module, each registered under its Caffe type name.

Every module in this package is imported here, so a new layer type is one new
file with a ``@register("CaffeType")`` class: nothing else to edit.
"""
from importlib import import_module
from pkgutil import iter_modules

_HELPERS = {"data_common", "loss_common", "recurrent"}  # shared code, not a layer type

for _info in sorted(iter_modules(__path__), key=lambda info: info.name):
    if _info.name not in _HELPERS and not _info.name.startswith("_"):
        import_module(f"{__name__}.{_info.name}")
