"""Errors the engine raises: each message names the file, line, layer or value at fault."""
from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on bad input."""


class PrototxtError(EngineError):
    """A prototxt file or text that does not parse, or names an unknown field."""


class NetDefinitionError(EngineError):
    """A net that parses but cannot be built (unknown layer, undefined bottom, ...)."""


class ShapeError(EngineError):
    """Blob shapes that do not fit together."""


class LabelError(EngineError):
    """A label outside the range a loss or accuracy layer accepts."""


class DataError(EngineError):
    """A data source (file, dataset) that is missing, corrupt or unsupported."""


class DeviceError(EngineError):
    """The GPU was asked for but cupy or a CUDA device is missing."""


class NonFiniteError(EngineError):
    """A loss, activation or gradient became NaN or infinite.

    Attributes name where: ``iteration``, ``layer``, ``blob`` and ``phase``
    ('forward', 'backward' or 'update').
    """

    def __init__(self, iteration: int, layer: str, blob: str, phase: str):
        self.iteration, self.layer, self.blob, self.phase = iteration, layer, blob, phase
        super().__init__(
            f"non-finite value at iteration {iteration}: {phase} of layer '{layer}' "
            f"produced NaN/inf in blob '{blob}'")


class SolverParameterError(NetDefinitionError):
    """A solver setting Caffe refuses (negative base_lr, momentum 1.5, unsorted stepvalue, ...)."""


class ResourceError(EngineError):
    """A net, blob, dataset or file larger than the memory (or size limit) there is for it."""


class SnapshotError(EngineError):
    """Snapshots cannot be written where ``snapshot_prefix`` points."""


class EngineWarning(UserWarning):
    """Something legal that is probably a mistake. The engine warns (never stops) on:

    - weights loaded with NaN/inf values (the layer, the blob, how many);
    - a solver with ``base_lr: 0``, ``clip_gradients: 0``, SGD ``momentum: 1``, or a
      negative ``gamma`` for the step / multistep / exp policies;
    - a training net without layers or learnable parameters;
    - a prototxt in a deprecated format, upgraded as Caffe upgrades it.

    The CLI and the app's scripted mode print each as one line on stdout.
    """
