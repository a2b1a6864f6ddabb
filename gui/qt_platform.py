"""Can Qt's xcb platform plugin load here? Checked before QApplication exists.

Qt ≥ 6.5 needs X libraries that stock Debian/Ubuntu installs often lack
(libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, ...). Without them Qt prints a
wall of text about "could not load the Qt platform plugin xcb" and aborts.
:func:`xcb_problem` runs ``ldd`` on the plugin and, when a library is missing,
returns one line naming the exact packages to install; the app prints it and
exits 1. Qt-free: nothing here imports PySide6's GUI modules.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

#: Debian/Ubuntu package of each shared library the xcb plugin loads, where the
#: usual soname -> package rule (``libfoo-bar.so.4`` -> ``libfoo-bar4``) does not hold.
PACKAGE_OF = {
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libEGL.so.1": "libegl1",
    "libfreetype.so.6": "libfreetype6",
    "libpng16.so.16": "libpng16-16",
    "libz.so.1": "zlib1g",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` reports as "not found", in order, each once."""
    found: list[str] = []
    for name in _NOT_FOUND.findall(ldd_output):
        if name not in found:
            found.append(name)
    return found


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that ships ``soname`` (libxcb-icccm.so.4 -> libxcb-icccm4)."""
    if soname in PACKAGE_OF:
        return PACKAGE_OF[soname]
    stem, _, version = soname.partition(".so.")
    version = version.split(".")[0]
    stem = stem.lower()
    joiner = "-" if stem[-1:].isdigit() else ""  # Debian policy: libxkbcommon-x11 0 -> libxkbcommon-x11-0
    return f"{stem}{joiner}{version}"


def problem_line(missing: list[str]) -> str | None:
    """One line saying which packages to install, or None when nothing is missing."""
    if not missing:
        return None
    packages: list[str] = []
    for soname in missing:
        package = debian_package(soname)
        if package not in packages:
            packages.append(package)
    return (f"backprop-studio: Qt cannot load its xcb platform plugin: missing {', '.join(missing)}; "
            f"on Debian/Ubuntu: sudo apt-get install {' '.join(packages)}")


def xcb_plugin_path() -> str | None:
    """PySide6's libqxcb.so, or None when it is not there."""
    try:
        import PySide6
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(PySide6.__file__), "Qt", "plugins", "platforms", "libqxcb.so")
    return path if os.path.isfile(path) else None


def will_use_xcb(environ=os.environ) -> bool:
    """Whether Qt will try the xcb plugin: on Linux, unless another platform is asked for
    or the session is a Wayland one (Qt then takes its wayland plugin)."""
    if not sys.platform.startswith("linux"):
        return False
    asked = environ.get("QT_QPA_PLATFORM", "")
    if asked:
        return asked.split(":")[0].split(";")[0] == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def xcb_problem(environ=os.environ) -> str | None:
    """One line when Qt's xcb plugin would fail for a missing library, else None
    (also None when the check cannot run: no ldd, no plugin, not xcb)."""
    if not will_use_xcb(environ):
        return None
    plugin, ldd = xcb_plugin_path(), shutil.which("ldd")
    if plugin is None or ldd is None:
        return None
    try:
        output = subprocess.run([ldd, plugin], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return problem_line(missing_libraries(output))
