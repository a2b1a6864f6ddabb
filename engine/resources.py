"""Where the shipped resources (examples, datasets) live, installed or not."""
from __future__ import annotations

import os


def root() -> str:
    """The ``resources`` folder: a package beside ``engine`` in both a checkout and an install."""
    import resources as package  # the top-level resources/ package
    return os.path.dirname(os.path.abspath(package.__file__))


def path(*parts: str) -> str:
    return os.path.join(root(), *parts)


def examples() -> dict[str, str]:
    """Example name -> path of its solver prototxt."""
    folder = path("examples")
    found = {}
    for name in sorted(os.listdir(folder)):
        solver = os.path.join(folder, name, "solver.prototxt")
        if os.path.isfile(solver):
            found[name] = solver
    return found
