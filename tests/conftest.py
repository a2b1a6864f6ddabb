"""Shared test setup: headless Qt, the GPU marker, paths to test data."""
import os
import pathlib
import tempfile

import pytest
from hypothesis import settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never write into the user's folders: snapshots relocated from read-only inputs
# (engine/snapshot_location.py) and the app's settings go to a throw-away folder.
_USER_DATA = tempfile.mkdtemp(prefix="backprop-studio-tests-")
os.environ["XDG_DATA_HOME"] = os.path.join(_USER_DATA, "data")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_USER_DATA, "config")

# hypothesis keeps no example database and its other files outside the checkout
os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(_USER_DATA, "hypothesis")
settings.register_profile("no-database", database=None)
settings.load_profile("no-database")

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def _gpu_ok() -> bool:
    from engine.backend import gpu_status
    return gpu_status()[0]


def _on_strict(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("gpu_kind") == "strict"


def pytest_generate_tests(metafunc):
    """A ``gpu`` test runs twice: ``[cuda]`` (skipped without CUDA) and ``[strict]``, on the
    strict device stand-in (engine/strict_device.py), except ``cuda_only`` ones."""
    definition = metafunc.definition
    if definition.get_closest_marker("gpu") and not definition.get_closest_marker("cuda_only"):
        metafunc.parametrize("gpu_kind", ["cuda", "strict"], indirect=True)


@pytest.fixture(autouse=True)
def gpu_kind(request):
    """'cuda' / 'strict' for a gpu test (None elsewhere); [strict] runs with the stand-in as the GPU."""
    kind = getattr(request, "param", None)
    if kind != "strict":
        yield kind
        return
    from engine import strict_device
    with strict_device.installed():
        yield kind


def pytest_collection_modifyitems(config, items):
    if any(item.get_closest_marker("gpu") for item in items) and not _gpu_ok():
        skip = pytest.mark.skip(reason="needs cupy and a CUDA device")
        for item in items:
            if item.get_closest_marker("gpu") and not _on_strict(item):
                item.add_marker(skip)


@pytest.fixture
def data_dir() -> pathlib.Path:
    return DATA


@pytest.fixture
def examples_dir() -> pathlib.Path:
    return ROOT / "resources" / "examples"
