"""Tests that run the engine and the app's debugger on the strict device stand-in
(engine.strict_device): device "gpu" builds its arrays, every implicit host<->device
crossing raises, and every explicit transfer is counted."""
import pytest

from engine import strict_device


@pytest.fixture
def strict():
    """The stand-in installed as the GPU for the test; yields its TransferLog."""
    with strict_device.installed() as log:
        yield log
