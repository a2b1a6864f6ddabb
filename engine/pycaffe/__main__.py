"""``python -m engine.pycaffe --install-alias | --remove-alias [--target DIR] [--force]``."""
from __future__ import annotations

import argparse
import sys

from ..errors import EngineError
from ._alias import install_alias, remove_alias


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.pycaffe",
                                     description="Install or remove a `caffe` module that loads engine.pycaffe.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--install-alias", action="store_true", help="write caffe.py into site-packages")
    action.add_argument("--remove-alias", action="store_true", help="delete the caffe.py written by --install-alias")
    parser.add_argument("--target", help="folder to write into (default: this interpreter's site-packages)")
    parser.add_argument("--force", action="store_true", help="install even if another caffe is importable")
    args = parser.parse_args(argv)
    try:
        if args.install_alias:
            print(f"installed {install_alias(args.target, args.force)}: `import caffe` now loads engine.pycaffe")
        else:
            removed = remove_alias(args.target)
            print(f"removed {removed}" if removed else "no alias installed")
    except (EngineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
