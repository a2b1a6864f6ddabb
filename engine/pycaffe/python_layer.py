"""Python layers in pycaffe: where the nets pycaffe builds import them from.

The layer type itself is engine.layers.python (``caffe.Layer``, the base class of
a Python layer, and the Blobs handed to its methods are in ``_blob``). A script
that imports engine.pycaffe runs its own Python code, and BVLC's pycaffe imports
a Python layer's module as ``import module`` does (``sys.path``): so the nets
and solvers pycaffe builds pass :data:`PYCAFFE_ACCESS` to the engine, as an
explicit argument. The app and the command line never do: there a module is
loaded only from a folder the user allowed (engine.python_layers).
"""
from __future__ import annotations

from ..python_layers import PYCAFFE_ACCESS, PythonLayerAccess

__all__ = ["PYCAFFE_ACCESS", "PythonLayerAccess"]
