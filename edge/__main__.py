"""`python -m edge` and the `dashcam` command: stop signals are answered before the heavy imports start.

Loading OpenCV and onnxruntime takes a second or more on a Pi; a SIGTERM (systemd stop,
ignition off) in that time ends the program with one line and status 130, like Ctrl-C,
instead of a silent death.
"""
import signal
import sys

from edge.errors import Interrupted, raise_interrupted


def run() -> int:
    signal.signal(signal.SIGTERM, raise_interrupted)
    signal.signal(signal.SIGINT, raise_interrupted)
    try:
        from edge.cli import main
    except Interrupted as exc:
        print(f"dashcam: interrupted by {exc.signal_name} before anything started", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
