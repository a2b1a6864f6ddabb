#!/usr/bin/env bash
# Builds build/gpu_carry/site.tar.xz (about 25 MB): the Python packages the lent CUDA machines
# lack, taken from this checkout's .venv (no downloads): protobuf, pyqtgraph, pytest-qt and a
# PySide6 cut down to QtCore/QtGui/QtWidgets/QtOpenGL(Widgets)/QtSvg/QtTest/QtDBus with the
# offscreen platform plugin (the whole PySide6 is over the 64 MiB a call may carry). Its compiled
# parts are abi3 (any CPython >= 3.9), x86-64 Linux. benchmarks/gpu_check.sh unpacks it when
# present; pass carry=["build/gpu_carry"] to the device tool (build/ is git-ignored).
set -eu
cd "$(dirname "$0")/.."
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
WORK=build/gpu_carry
rm -rf "$WORK/site" "$WORK/site.tar.xz"
mkdir -p "$WORK/site/PySide6/Qt/lib" "$WORK/site/PySide6/Qt/plugins"
cp -r "$SITE"/google "$SITE"/shiboken6 "$SITE"/pyqtgraph "$SITE"/pytestqt "$WORK/site/"
cp -r "$SITE"/protobuf-*.dist-info "$SITE"/pytest_qt-*.dist-info "$SITE"/pyqtgraph-*.dist-info "$WORK/site/"
cp "$SITE"/PySide6/*.py "$SITE"/PySide6/libpyside6.abi3.so.* "$WORK/site/PySide6/"
for module in QtCore QtGui QtWidgets QtOpenGL QtOpenGLWidgets QtSvg QtTest QtDBus; do
  cp "$SITE/PySide6/$module.abi3.so" "$WORK/site/PySide6/"
done
for lib in Core Gui Widgets OpenGL OpenGLWidgets Svg Test DBus XcbQpa; do
  cp "$SITE/PySide6/Qt/lib/libQt6$lib.so.6" "$WORK/site/PySide6/Qt/lib/"
done
cp "$SITE"/PySide6/Qt/lib/libicu*.so.* "$WORK/site/PySide6/Qt/lib/"
cp -r "$SITE/PySide6/Qt/plugins/platforms" "$SITE/PySide6/Qt/plugins/imageformats" "$WORK/site/PySide6/Qt/plugins/"
find "$WORK/site" -name __pycache__ -prune -exec rm -rf {} +
tar -C "$WORK" -cJf "$WORK/site.tar.xz" site
rm -rf "$WORK/site"
ls -l "$WORK/site.tar.xz"
