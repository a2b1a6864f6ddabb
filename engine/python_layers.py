"""Consent for Python layers: a net's ``type: "Python"`` layer runs code from a
module, and the engine imports that module only from a folder the user allowed.

Opening a net file never runs code by itself. The ways to allow a folder:

- the command line: ``--allow-python-layers DIR`` (repeatable) on train, test,
  time and gradcheck;
- a script: ``engine.allow_python_layers(DIR)`` for the whole process (undone by
  ``engine.revoke_python_layers(DIR)``), or ``Net(..., python_layers=[DIR])`` /
  ``get_solver(..., python_layers=[DIR])`` for one net or solver;
- the window: a dialog naming the module, its file and the net (Once / Always for
  this folder / No); "Always" is remembered in the settings and revocable.

A module is looked for only in the allowed folders (``<dir>/<module>.py`` or the
package ``<dir>/<module>/``), never on ``sys.path`` or in the working directory,
and it is loaded under a private name, so it neither shadows nor is shadowed by a
module of the same name elsewhere. A module file that changed since it was loaded
is loaded again (edit your layer, open the net again).

pycaffe is the exception, as in BVLC Caffe: a script that imports
``engine.pycaffe`` is itself the user's code, and pycaffe's nets import their
Python layers as ``import module`` does (``PythonLayerAccess(sys_path=True)``,
which ``engine.pycaffe`` passes to the nets it builds; the app and the command
line never do).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Iterable

from .errors import EngineError, NetDefinitionError

FLAG = "--allow-python-layers"
API = "engine.allow_python_layers"

_allowed: list[str] = []  # the process-wide folders (engine.allow_python_layers)
_lock = threading.RLock()


def _folder(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


def allow_python_layers(folder: str | os.PathLike) -> str:
    """Allow the nets of this process to run Python-layer modules found in ``folder``;
    returns the folder as stored (absolute, links resolved)."""
    path = _folder(folder)
    if not os.path.isdir(path):
        raise NetDefinitionError(f"allow_python_layers: '{os.fspath(folder)}' is not a folder")
    with _lock:
        if path not in _allowed:
            _allowed.append(path)
    return path


def revoke_python_layers(folder: str | os.PathLike) -> bool:
    """Take back the process-wide permission for ``folder``; False when it had none.
    Nets already built keep the layers they loaded."""
    path = _folder(folder)
    with _lock:
        if path in _allowed:
            _allowed.remove(path)
            return True
    return False


def allowed_python_layer_folders() -> list[str]:
    """The folders allowed for the whole process, in the order they were allowed."""
    with _lock:
        return list(_allowed)


@dataclass(frozen=True)
class PythonLayerAccess:
    """Where a net may import its Python layers from: ``folders`` (for this net, in
    addition to the process-wide ones), or ``sys_path`` (pycaffe's ``import module``).
    ``beside``: the file the net was read from; ``hints``: its folder and its solver's,
    where a refusal looks for the module to name the folder to allow (with the
    PYTHONPATH folders, where Caffe users keep their layers); never imported from
    without consent."""

    folders: tuple[str, ...] = ()
    sys_path: bool = False
    beside: str | None = None
    hints: tuple[str, ...] = ()

    def search_folders(self) -> list[str]:
        found: list[str] = []
        for folder in list(self.folders) + allowed_python_layer_folders():
            path = _folder(folder)
            if path not in found:
                found.append(path)
        return found

    def near(self, path: str | None) -> "PythonLayerAccess":
        """The same access, for a net or solver read from ``path`` (its folder first among the hints)."""
        if not path:
            return self
        folder = _folder(os.path.dirname(os.path.abspath(path)))
        return replace(self, beside=os.path.abspath(path), hints=(folder,) + tuple(h for h in self.hints if h != folder))


#: What engine.pycaffe passes to the nets it builds (BVLC's semantics: sys.path).
PYCAFFE_ACCESS = PythonLayerAccess(sys_path=True)


def access_of(python_layers: Any) -> PythonLayerAccess:
    """A PythonLayerAccess from what Net/Solver were given: None (the process-wide
    folders only), an access, or an iterable of folders."""
    if python_layers is None:
        return PythonLayerAccess()
    if isinstance(python_layers, PythonLayerAccess):
        return python_layers
    if isinstance(python_layers, (str, os.PathLike)):
        python_layers = [python_layers]
    return PythonLayerAccess(folders=tuple(_folder(f) for f in python_layers))


class PythonLayerRefused(NetDefinitionError):
    """A Python layer whose module is not in an allowed folder. ``layer``, ``module``,
    ``module_file`` (where it would be loaded from, when found beside the net or its
    solver or on PYTHONPATH, else None), ``folder`` (the folder to allow, or None) and ``net`` (the net's file or name)."""

    def __init__(self, message: str, *, layer: str, module: str, module_file: str | None,
                 folder: str | None, net: str | None):
        super().__init__(message)
        self.layer, self.module, self.module_file, self.folder, self.net = layer, module, module_file, folder, net


class PythonLayerError(EngineError):
    """The code of a Python layer raised an error (the message names the layer and where)."""


def module_file_in(folder: str, module: str) -> str | None:
    """``<folder>/<module>.py`` or ``<folder>/<module>/__init__.py`` (a dotted module:
    its top package), if it exists."""
    top = module.split(".", 1)[0]
    candidates = [os.path.join(folder, top, "__init__.py")]
    if "." not in module:
        candidates.insert(0, os.path.join(folder, f"{top}.py"))
    return next((c for c in candidates if os.path.isfile(c)), None)


def refusal(param, access: PythonLayerAccess, net: str | None) -> PythonLayerRefused:
    """The error for a Python layer no allowed folder holds: it names the layer, the
    module, where it was found (beside the net) and the flag / API to allow it."""
    module = param.python_param.module
    where = f"layer '{param.name}' (type 'Python', module '{module}', layer '{param.python_param.layer}')"
    found, folder = None, None
    for candidate in _hint_folders(access):
        found = module_file_in(candidate, module)
        if found:
            folder = candidate
            break
    if found and folder:
        place = (f"{os.path.relpath(found, folder)} is in {folder}; "
                 f"allow that folder with {FLAG} '{folder}' (command line) or {API}('{folder}') (script), "
                 f"or when the window asks")
    else:
        searched = ", ".join(access.search_folders()) or "none allowed"
        place = (f"no allowed folder holds it (allowed: {searched}); allow the folder of {module}.py with "
                 f"{FLAG} DIR (command line) or {API}(DIR) (script)")
    named_by = f"{access.beside}: " if access.beside else ""
    message = (f"{named_by}{where}: Backprop Studio never runs code named by a file unless you allow its folder: "
               f"{place}")
    return PythonLayerRefused(message, layer=param.name, module=module, module_file=found, folder=folder,
                              net=net)


def _hint_folders(access: PythonLayerAccess) -> list[str]:
    """Where a refusal looks for the module: beside the net and its solver, then PYTHONPATH."""
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    folders: list[str] = []
    for folder in list(access.hints) + [_folder(p) for p in python_path]:
        if folder not in folders and os.path.isdir(folder):
            folders.append(folder)
    return folders


# -- loading --------------------------------------------------------------
_loaded: dict[tuple[str, str], tuple[tuple, ModuleType]] = {}


def _signature(path: str) -> tuple:
    """What tells a changed module: the (path, mtime, size) of its .py files."""
    if os.path.basename(path) != "__init__.py":
        stat = os.stat(path)
        return ((path, stat.st_mtime_ns, stat.st_size),)
    entries = []
    for root, _dirs, files in os.walk(os.path.dirname(path)):
        for name in sorted(files):
            if name.endswith(".py"):
                full = os.path.join(root, name)
                stat = os.stat(full)
                entries.append((full, stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(entries))


def private_name(folder: str, top: str) -> str:
    """The sys.modules name a module of an allowed folder is loaded under."""
    digest = hashlib.sha1(folder.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"_backprop_python_layer_{digest}_{top}"


def _make_caffe_importable() -> None:
    """A layer written for Caffe says ``import caffe``: when no other caffe is
    importable, that name is engine.pycaffe (as ``register_caffe_alias`` makes it)."""
    if "caffe" in sys.modules or importlib.util.find_spec("caffe") is not None:
        return
    from .pycaffe import register_caffe_alias
    register_caffe_alias()


def _load_from(folder: str, module: str, path: str) -> ModuleType:
    """Execute the module file ``path`` of an allowed folder under a private name (once
    per version of the file); a dotted ``module`` is imported inside its package."""
    top = module.split(".", 1)[0]
    name = private_name(folder, top)
    with _lock:
        signature = _signature(path)
        cached = _loaded.get((folder, top))
        if cached is None or cached[0] != signature:
            for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
                del sys.modules[key]
            package = [os.path.dirname(path)] if os.path.basename(path) == "__init__.py" else None
            spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=package)
            if spec is None or spec.loader is None:
                raise NetDefinitionError(f"cannot load the Python module file {path}")
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[name] = loaded  # relative imports and dataclasses look it up there
            _make_caffe_importable()
            try:
                spec.loader.exec_module(loaded)
            except BaseException:
                del sys.modules[name]
                raise
            _loaded[(folder, top)] = (signature, loaded)
        found = _loaded[(folder, top)][1]
        if "." in module:
            return importlib.import_module(f"{name}.{module.split('.', 1)[1]}")
        return found


def _import(param, access: PythonLayerAccess, net: str | None) -> ModuleType:
    module = param.python_param.module
    where = f"layer '{param.name}' (Python, module '{module}')"
    if access.sys_path:
        _make_caffe_importable()
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            raise NetDefinitionError(f"{where}: cannot import module '{module}' ({exc}); "
                                     f"is its folder on PYTHONPATH?") from None
    for folder in access.search_folders():
        path = module_file_in(folder, module)
        if path is None:
            continue
        try:
            return _load_from(folder, module, path)
        except ImportError as exc:
            raise NetDefinitionError(f"{where}: {path}: cannot import it ({exc})") from None
        except SyntaxError as exc:
            raise NetDefinitionError(f"{where}: {exc.filename}:{exc.lineno}: syntax error: {exc.msg}") from None
        except Exception as exc:
            raise PythonLayerError(f"{where}: loading {path} failed: {_located(exc, path)}") from exc
    raise refusal(param, access, net)


def _located(exc: BaseException, origin: str | None = None) -> str:
    """``Type: message (file:line)`` of the innermost frame of the user's code."""
    frame_text = ""
    trace = exc.__traceback__
    engine_dir = os.path.dirname(os.path.abspath(__file__))
    while trace is not None:
        filename = trace.tb_frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(engine_dir + os.sep):
            frame_text = f" ({filename}:{trace.tb_lineno})"
        trace = trace.tb_next
    return f"{type(exc).__name__}: {exc}{frame_text}"


def layer_class(param, python_layers: Any = None, net: str | None = None) -> type:
    """The ``caffe.Layer`` subclass that ``param.python_param`` names, imported as
    ``python_layers`` allows (see the module's doc)."""
    from .pycaffe._blob import Layer as PyCaffeLayer
    spec = param.python_param
    if not spec.module or not spec.layer:
        raise NetDefinitionError(f"layer '{param.name}' (Python): python_param needs both module and layer")
    module = _import(param, access_of(python_layers), net)
    cls = getattr(module, spec.layer, None)
    if not isinstance(cls, type) or not issubclass(cls, PyCaffeLayer):
        raise NetDefinitionError(f"layer '{param.name}' (Python): '{spec.module}.{spec.layer}' is not a "
                                 f"subclass of caffe.Layer (engine.pycaffe.Layer)")
    return cls


def user_error(layer_name: str, method: str, exc: BaseException) -> PythonLayerError:
    """The engine error for an exception raised by a Python layer's method."""
    return PythonLayerError(f"layer '{layer_name}' (Python): its {method}() raised {_located(exc)}")


def folders_of(values: Iterable[str] | None) -> tuple[str, ...]:
    """Command-line folders as an access's folders (each must exist)."""
    result = []
    for value in values or ():
        path = _folder(value)
        if not os.path.isdir(path):
            raise NetDefinitionError(f"{FLAG}: '{value}' is not a folder")
        result.append(path)
    return tuple(result)
