"""Start Backprop Studio: ``python main.py [PATH] [--device gpu] [--screenshot OUT.png ...]``.

Exit status 0 on success; on a failure one line on stderr and status 1.
"""
import sys


def _run() -> int:
    try:
        from gui.app import main
    except ImportError as exc:  # PySide6 (or another GUI dependency) is missing
        print(f"backprop-studio: the app cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        return main()
    except KeyboardInterrupt:
        print("backprop-studio: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything the app did not report itself: one line, no traceback
        text = " ".join(str(exc).split()) or "no details"
        print(f"backprop-studio: error: {type(exc).__name__}: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_run())
