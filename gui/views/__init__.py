"""The Qt views: one panel per file, each observing the model (gui.model)."""
