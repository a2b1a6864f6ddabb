"""Named window layouts and the rules that keep a window usable on any screen (Qt-free).

A :class:`LayoutSpec` says which docks show, in which area, with what share of
the window, which are tabbed together and which tab is in front; docks it does
not name are hidden. ``gui.views.layouts`` applies a spec to the real window.

The rules, checked by tests at 1280×720, 1600×1000 and 1920×1080:

- the window is never larger than the screen's available geometry
  (:func:`fit_rect`), also after docks open;
- a layout saved on another screen is adapted, not restored blindly
  (:func:`restore_saved_state`): a saved dock state comes back only on a screen
  at least as large as the one it was saved on; otherwise the saved layout's
  name is applied afresh to this screen;
- no dock below a usable size (:data:`USABLE_SIZE`): a dock opened too small is
  given room, or floated at a usable size.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

Rect = tuple[int, int, int, int]  # x, y, width, height
Size = tuple[int, int]

#: The docks of the window and of the debugger, by object name.
GRAPH, SOLVER, CURVES, DATASET = "graphDock", "solverDock", "curvesDock", "datasetDock"
REWIND, BREAKPOINTS, BOUNDARY = "debugRewindDock", "debugBreakpointsDock", "debugBoundaryDock"
DECOMPOSITION, OVERLAYS, TIMING = "debugDecompositionDock", "debugOverlaysDock", "debugTimingDock"
GRADCHECK, TILES = "debugGradcheckDock", "debugTilesDock"

#: The smallest size (width, height) at which each dock still shows what it is for:
#: the gradient check's table ≥ 6 rows beside its error maps, the update taken apart's
#: six maps, the statistics table's rows.
USABLE_SIZE: dict[str, Size] = {
    GRAPH: (180, 240), SOLVER: (240, 240), DATASET: (240, 200), CURVES: (320, 150),
    REWIND: (360, 50), BREAKPOINTS: (300, 240), BOUNDARY: (300, 300), TILES: (300, 300),
    GRADCHECK: (420, 330), DECOMPOSITION: (640, 420), OVERLAYS: (420, 200), TIMING: (360, 220),
}

#: The smallest map the layouts must leave (short side, px).
MIN_MAP_SIDE = 120
#: Screens narrower than this (px) get a layout's narrow variant: the graph, the
#: inspector and a column of debugger panels side by side need about 1500 px.
NARROW_WIDTH = 1500
#: Screens less high than this (px) get the narrow variant too: the maps, Rewind and the
#: curves one above the other need about 900 px.
SHORT_HEIGHT = 900


@dataclass(frozen=True)
class Placement:
    """One dock in a layout: its area (left/right/top/bottom), its share of the window's
    width (left/right) or height (top/bottom), and the dock it is tabbed behind."""

    dock: str
    area: str
    share: float = 0.25
    tab_with: str | None = None


@dataclass(frozen=True)
class LayoutSpec:
    name: str
    title: str
    placements: tuple[Placement, ...]
    front: tuple[str, ...] = ()  # the tabs in front
    font_scale: float = 1.0
    description: str = ""
    #: where the screen is narrower than NARROW_WIDTH: these placements instead
    narrow: tuple[Placement, ...] = ()
    narrow_front: tuple[str, ...] | None = None  # the narrow variant's tabs in front (None: ``front``)

    def docks(self) -> list[str]:
        return [p.dock for p in self.placements]

    def for_screen(self, width: int, height: int = 10**6) -> LayoutSpec:
        """This layout as it fits a ``width``×``height`` screen (the narrow variant below
        NARROW_WIDTH or SHORT_HEIGHT)."""
        if (width >= NARROW_WIDTH and height >= SHORT_HEIGHT) or not self.narrow:
            return self
        front = self.front if self.narrow_front is None else self.narrow_front
        return replace(self, placements=self.narrow, narrow=(), front=front)


STEP_THROUGH = LayoutSpec(
    "stepthrough", "Step-through",
    (Placement(GRAPH, "left", 0.22), Placement(SOLVER, "right", 0.19), Placement(DATASET, "right", tab_with=SOLVER),
     Placement(CURVES, "bottom", 0.24)),
    front=(SOLVER,),
    description="The graph, the selected layer's maps and formulas, the solver, the curves.",
    narrow=(Placement(GRAPH, "left", 0.20), Placement(SOLVER, "left", tab_with=GRAPH),
            Placement(DATASET, "left", tab_with=GRAPH), Placement(CURVES, "bottom", 0.24)),
    narrow_front=(GRAPH,))

DEBUGGING = LayoutSpec(
    "debugging", "Debugging",
    (Placement(GRAPH, "left", 0.18), Placement(GRADCHECK, "right", 0.33),
     Placement(BREAKPOINTS, "right", tab_with=GRADCHECK), Placement(OVERLAYS, "right", tab_with=GRADCHECK),
     Placement(TIMING, "right", tab_with=GRADCHECK), Placement(SOLVER, "right", tab_with=GRADCHECK),
     Placement(REWIND, "top", 0.08), Placement(CURVES, "bottom", 0.22)),
    front=(GRADCHECK,),
    description="The debugger's panels on the right, tabbed; Rewind above; the curves below.",
    narrow=(Placement(GRADCHECK, "right", 0.30), Placement(BREAKPOINTS, "right", tab_with=GRADCHECK),
            Placement(OVERLAYS, "right", tab_with=GRADCHECK), Placement(TIMING, "right", tab_with=GRADCHECK),
            Placement(SOLVER, "right", tab_with=GRADCHECK), Placement(GRAPH, "right", tab_with=GRADCHECK),
            Placement(CURVES, "right", tab_with=GRADCHECK), Placement(REWIND, "top", 0.08)))

CLASSROOM = LayoutSpec(
    "classroom", "Classroom",
    (Placement(GRAPH, "left", 0.27), Placement(REWIND, "top", 0.08), Placement(CURVES, "bottom", 0.26)),
    description="What students read: the graph, the maps and formulas, the curves, and Rewind to go back.",
    narrow=(Placement(GRAPH, "left", 0.27), Placement(CURVES, "bottom", 0.26),
            Placement(REWIND, "bottom", tab_with=CURVES)),
    front=(CURVES,))

PRESENTER = LayoutSpec(
    "presenter", "Presenter",
    (Placement(GRAPH, "left", 0.28), Placement(CURVES, "bottom", 0.26)),
    font_scale=1.5,
    narrow=(Placement(GRAPH, "left", 0.30), Placement(CURVES, "left", tab_with=GRAPH)),
    front=(GRAPH,),
    description="For a projector: the graph, the selected layer's maps and formulas, the curves, 1.5× fonts.")

#: The layouts of View ▸ Layout, in menu order; presenter mode is F12's own.
LAYOUTS: dict[str, LayoutSpec] = {spec.name: spec for spec in (STEP_THROUGH, DEBUGGING, CLASSROOM)}
ALL_LAYOUTS: dict[str, LayoutSpec] = {**LAYOUTS, PRESENTER.name: PRESENTER}
DEFAULT = STEP_THROUGH.name


def layout_named(name: str) -> LayoutSpec:
    """The layout called ``name`` (its key or its title, any case, '-' and spaces ignored)."""
    key = name.lower().replace("-", "").replace(" ", "").replace("_", "")
    for spec in ALL_LAYOUTS.values():
        if key in (spec.name, spec.title.lower().replace("-", "").replace(" ", "")):
            return spec
    raise KeyError(f"no layout named '{name}' (known: {', '.join(ALL_LAYOUTS)})")


def fit_size(size: Size, available: Size) -> Size:
    """``size`` no larger than ``available``."""
    return min(size[0], available[0]), min(size[1], available[1])


def fit_rect(rect: Rect, available: Rect) -> Rect:
    """``rect`` shrunk to fit ``available`` and moved inside it (a window from a larger
    screen, or one pushed off the screen's edge)."""
    ax, ay, aw, ah = available
    w, h = fit_size((rect[2], rect[3]), (aw, ah))
    x = min(max(rect[0], ax), ax + aw - w)
    y = min(max(rect[1], ay), ay + ah - h)
    return x, y, w, h


def restore_saved_state(saved_screen: Size | None, screen: Size) -> bool:
    """Whether a dock state saved on ``saved_screen`` may be restored as is on ``screen``:
    only where this screen is at least as large (the docks' sizes then still fit)."""
    if saved_screen is None:
        return False
    return screen[0] >= saved_screen[0] and screen[1] >= saved_screen[1]


def dock_pixels(share: float, extent: int, usable: int) -> int:
    """A dock's size along its area's axis: its share of ``extent``, at least ``usable``,
    never more than half of ``extent``."""
    return int(min(max(share * extent, usable), extent // 2))


def overlapping(rects: list[tuple[str, Rect]]) -> list[tuple[str, str]]:
    """The pairs of named rectangles that overlap (touching edges do not)."""
    pairs = []
    for i, (name_a, a) in enumerate(rects):
        for name_b, b in rects[i + 1:]:
            if a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]:
                pairs.append((name_a, name_b))
    return pairs
