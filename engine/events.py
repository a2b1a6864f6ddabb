"""Step-through events: what one phase of an iteration did, for the GUI and scripts."""
from __future__ import annotations

from dataclasses import dataclass, field

FORWARD, BACKWARD, CLIP, UPDATE_VALUE, UPDATE, ITERATION_END, TEST, NONFINITE = (
    "forward", "backward", "clip", "update_value", "update", "iteration_end", "test", "nonfinite")


@dataclass
class Event:
    """One stop of the step-through.

    ``kind`` is one of forward, backward, clip, update_value, update,
    iteration_end, test, nonfinite; ``layer`` / ``layer_index`` name the layer
    (when there is one); ``shapes`` maps blob names to shapes; ``products`` lists
    the matrix products of the phase (InnerProduct: the seed's three) as text;
    ``dims`` holds M_, N_, K_ where they apply; ``detail`` anything else.
    """

    kind: str
    iteration: int
    layer: str | None = None
    layer_index: int | None = None
    layer_type: str | None = None
    bottoms: list[str] = field(default_factory=list)
    tops: list[str] = field(default_factory=list)
    shapes: dict[str, tuple] = field(default_factory=dict)
    products: list[str] = field(default_factory=list)
    dims: dict[str, int] = field(default_factory=dict)
    detail: dict = field(default_factory=dict)

    def __str__(self) -> str:
        where = f" {self.layer} ({self.layer_type})" if self.layer else ""
        extra = f"  {'; '.join(self.products)}" if self.products else ""
        return f"[iter {self.iteration}] {self.kind}{where}{extra}"


# -- Caffe's named stages of one iteration (Solver::Step, SGDSolver::ApplyUpdate) --
CLIP_GRADIENTS, NORMALIZE, REGULARIZE, COMPUTE_UPDATE_VALUE, NET_UPDATE = (
    "ClipGradients", "Normalize", "Regularize", "ComputeUpdateValue", "Update")
#: The update's stages, in the order the solver runs them (the last one once per iteration).
STAGES = (CLIP_GRADIENTS, NORMALIZE, REGULARIZE, COMPUTE_UPDATE_VALUE, NET_UPDATE)


class Observer:
    """Hooks into one training iteration: Caffe's ``Solver::Callback``, but per
    stage and per layer. Subclass and override the hooks you need (each default
    does nothing); add the observer to ``solver.observers``.

    The hooks run on the stepping thread, in this order: ``on_start``;
    ``before_layer`` / ``after_layer`` around every layer's forward (then every
    backward, top to bottom); ``on_gradients_ready`` (raw dW / db in the param
    diffs, before anything touches them); ``after_stage`` for ClipGradients (once,
    ``param_index`` None), then Normalize, Regularize and ComputeUpdateValue for
    each learnable param; ``after_stage`` for Update (weights changed, ``param_index``
    None); ``on_iteration_end``. A hook may raise ``engine.errors.NonFiniteError``
    to stop the iteration before the weights change (the NaN trap does).
    ``detail`` of Regularize holds ``decay_term`` (the λ·W or λ·sign W that was
    added; None when there is no decay), of ClipGradients ``norm``.
    """

    def on_start(self, solver) -> None:
        """The iteration begins (param diffs cleared, before any test pass)."""

    def before_layer(self, solver, phase: str, index: int) -> None:
        """Layer ``index``'s ``phase`` ("forward" / "backward") is about to run."""

    def after_layer(self, solver, phase: str, index: int) -> None:
        """Layer ``index``'s ``phase`` has run."""

    def on_gradients_ready(self, solver, loss: float) -> None:
        """Forward and backward are done; the param diffs hold the raw gradients."""

    def after_stage(self, solver, stage: str, param_index: int | None, detail: dict) -> None:
        """One of :data:`STAGES` has run (for one param, or for all when None)."""

    def on_iteration_end(self, solver, loss: float) -> None:
        """The iteration is done (``solver.iter`` already counts it)."""
