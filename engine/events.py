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
