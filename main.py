"""Start Backprop Studio: ``python main.py [PATH] [--device gpu] [--screenshot OUT.png ...]``."""
import sys

if __name__ == "__main__":
    try:
        from gui.app import main
    except ImportError as exc:  # the GUI package has not landed yet
        import engine
        print(f"Backprop Studio engine {engine.__version__} (GUI unavailable: {exc})")
        sys.exit(0)
    sys.exit(main())
