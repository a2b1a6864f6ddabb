"""The app's Qt-free model: the state the views observe.

- :mod:`gui.model.events` — the typed events the model emits and the emitter.
- :mod:`gui.model.metrics` — the training curves, bounded in memory, full resolution on disk.

The session (``gui.model.session.Session``) owns the solver, the metrics and the run
state and emits these events; the views subscribe to them.
"""
