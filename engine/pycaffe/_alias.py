"""The optional ``caffe`` alias: ``import caffe`` loading engine.pycaffe.

Only on request: ``python -m engine.pycaffe --install-alias`` writes a one-file
``caffe.py`` shim into site-packages (refusing when another ``caffe`` is
importable), ``--remove-alias`` deletes it; within one script,
``engine.pycaffe.register_caffe_alias()`` does the same without any file.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig

from ..atomic import write_text
from ..errors import EngineError

MARKER = "# engine.pycaffe alias"
SHIM = f'''{MARKER}: `import caffe` loads Backprop Studio's engine.pycaffe.
# Remove with: python -m engine.pycaffe --remove-alias
import engine.pycaffe as _pycaffe

_pycaffe.register_caffe_alias()
'''


def register_caffe_alias() -> None:
    """Make ``caffe`` and its submodules (``caffe.io``, ``caffe.proto.caffe_pb2``, ...)
    names of engine.pycaffe's modules in this interpreter."""
    prefix = __name__.rsplit(".", 1)[0]
    for name, module in list(sys.modules.items()):
        if name == prefix or name.startswith(prefix + "."):
            sys.modules["caffe" + name[len(prefix):]] = module
    sys.modules["caffe.proto.caffe_pb2"] = sys.modules["engine.proto.caffe_pb2"]


def default_target() -> str:
    """This interpreter's site-packages (a virtual environment's own when in one)."""
    return sysconfig.get_paths()["purelib"]


def _is_ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(len(MARKER)) == MARKER
    except OSError:
        return False


def install_alias(target: str | None = None, force: bool = False) -> str:
    """Write ``caffe.py`` into ``target``; returns its path."""
    folder = target or default_target()
    path = os.path.join(folder, "caffe.py")
    found = importlib.util.find_spec("caffe") if "caffe" not in sys.modules else None
    other = found is not None and found.origin and os.path.abspath(found.origin) != os.path.abspath(path)
    if (other or (os.path.exists(path) and not _is_ours(path))) and not force:
        where = found.origin if other and found is not None else path
        raise EngineError(f"a module named caffe already exists ({where}); not shadowing it "
                          f"(use --force to install the alias anyway)")
    if os.path.isdir(os.path.join(folder, "caffe")) and not force:
        raise EngineError(f"a caffe package exists in {folder}; not shadowing it (use --force)")
    os.makedirs(folder, exist_ok=True)
    write_text(path, SHIM)
    return path


def remove_alias(target: str | None = None) -> str | None:
    """Delete the ``caffe.py`` shim this module wrote; returns its path, None if there was none."""
    path = os.path.join(target or default_target(), "caffe.py")
    if not os.path.exists(path):
        return None
    if not _is_ours(path):
        raise EngineError(f"{path} was not written by engine.pycaffe; leaving it alone")
    os.remove(path)
    return path
