"""Shared test setup: headless Qt, the GPU marker, paths to test data."""
import os
import pathlib

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def _gpu_ok() -> bool:
    from engine.backend import gpu_status
    return gpu_status()[0]


def pytest_collection_modifyitems(config, items):
    if any(item.get_closest_marker("gpu") for item in items) and not _gpu_ok():
        skip = pytest.mark.skip(reason="needs cupy and a CUDA device")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)


@pytest.fixture
def data_dir() -> pathlib.Path:
    return DATA


@pytest.fixture
def examples_dir() -> pathlib.Path:
    return ROOT / "resources" / "examples"
