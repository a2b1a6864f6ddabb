"""The app's Qt-free model: the state the views observe, tested without a window.

The session (:mod:`gui.model.session`) owns the loaded solver, the curves
(:mod:`~gui.model.metrics`), the rewind timeline (:mod:`~gui.model.timeline`,
capture/restore in :mod:`~gui.model.state`) and the break conditions, and says
what changed with typed events (:mod:`~gui.model.events`). Runs go through one
loop (:mod:`~gui.model.runner`), in the worker thread or the solver process
(:mod:`~gui.model.solver_process`). The debugger's cores (decompose, boundary,
timing, ...) live here too; their panels are in :mod:`gui.views`. See
docs/architecture.md.
"""
