"""Where snapshots of a read-only input go.

Shipped examples (``resources/examples``), the installed package, a checkout's
test data and any folder without write permission are inputs: training them
must not write into them. A snapshot prefix that resolves inside one is moved
to a per-user data folder, ``<data home>/backprop-studio/snapshots/<example>/``
(``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux, ``%LOCALAPPDATA%`` on
Windows, ``~/Library/Application Support`` on macOS), keeping the prefix's
path below the solver's folder. Everything else keeps Caffe's rule unchanged.
"""
from __future__ import annotations

import os
import stat
import sys

APP_FOLDER = "backprop-studio"


def user_data_home(environ=os.environ) -> str:
    """The per-user data folder of the platform (no dependency: platformdirs' rule)."""
    if sys.platform.startswith("win"):
        return environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    configured = environ.get("XDG_DATA_HOME", "")
    return configured if os.path.isabs(configured) else os.path.join(os.path.expanduser("~"), ".local", "share")


def user_snapshot_folder(example: str, environ=os.environ) -> str:
    """``<data home>/backprop-studio/snapshots/<example>``."""
    return os.path.join(user_data_home(environ), APP_FOLDER, "snapshots", example)


def shipped_folders() -> list[str]:
    """Folders that hold shipped inputs: the resources, the engine package and,
    in a checkout, its ``tests`` folder (the test data)."""
    from . import resources
    folders = [resources.root(), os.path.dirname(os.path.abspath(__file__))]
    project = os.path.dirname(resources.root())
    if os.path.isfile(os.path.join(project, "pyproject.toml")):
        folders.append(os.path.join(project, "tests"))
    return [os.path.realpath(folder) for folder in folders]


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def existing_ancestor(path: str) -> str:
    """``path`` itself, or its nearest folder above that exists."""
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def is_read_only(folder: str) -> bool:
    """No write permission for us, or no write bit at all (a folder made read-only
    reads as such even for root, who could write anyway)."""
    existing = existing_ancestor(folder)
    if not existing or not os.path.isdir(existing):
        return False
    mode = os.stat(existing).st_mode
    return not os.access(existing, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def must_relocate(prefix_path: str, solver_folder: str) -> bool:
    """Whether snapshots at ``prefix_path`` would write into a read-only input: a shipped
    folder, or the solver's own folder (or one below it) when that is read-only. A prefix
    the solver points elsewhere keeps Caffe's rule (an unwritable one is an error)."""
    real = os.path.realpath(os.path.dirname(prefix_path) or os.curdir)
    if any(_inside(real, shipped) for shipped in shipped_folders()):
        return True
    solver_real = os.path.realpath(solver_folder or os.curdir)
    return _inside(real, solver_real) and is_read_only(solver_folder or os.curdir)


def relocate(prefix_path: str, solver_folder: str, environ=os.environ) -> str:
    """``prefix_path`` itself, or its place in the per-user folder when it would write
    into a read-only input (:func:`must_relocate`); the example's name is the solver's
    folder name."""
    if not must_relocate(prefix_path, solver_folder):
        return prefix_path
    solver_folder = os.path.abspath(solver_folder or os.curdir)
    prefix_path = os.path.abspath(prefix_path)
    example = os.path.basename(os.path.normpath(solver_folder)) or "snapshots"
    relative = os.path.relpath(prefix_path, solver_folder)
    if relative.startswith(os.pardir):
        relative = os.path.basename(prefix_path)
    return os.path.normpath(os.path.join(user_snapshot_folder(example, environ), relative))


def relocation_note(solver) -> str | None:
    """A log line when ``solver``'s snapshots go to the per-user folder, else None."""
    from . import io
    from .errors import NetDefinitionError
    if not (solver.param.snapshot > 0 or solver.param.snapshot_after_train):
        return None
    try:
        prefix = io.snapshot_prefix(solver)
    except NetDefinitionError:
        return None
    base = os.path.abspath(os.path.dirname(solver.path) if solver.path else os.curdir)
    if _inside(os.path.realpath(prefix), os.path.realpath(base)):
        return None
    if not _inside(os.path.realpath(prefix), os.path.realpath(os.path.join(user_data_home(), APP_FOLDER))):
        return None
    return (f"Snapshots go to {os.path.dirname(prefix)}{os.sep} "
            f"(the solver's folder {base} is a read-only input)")
