"""The debugger's Qt panels, one per file; each draws a Qt-free core of gui.model."""
