"""`python -m edge` and the `dashcam` command: stop signals are answered before the heavy imports start.

Loading OpenCV and onnxruntime takes a second or more on a Pi; a SIGTERM (systemd stop,
ignition off) in that time ends the program with one line and status 130, like Ctrl-C,
instead of a silent death.
"""
import sys

from edge.errors import Interrupted, interrupted_by, raise_pending_stop, unwind_on_stop_signals


def run() -> int:
    unwind_on_stop_signals()
    try:
        from edge.cli import main

        raise_pending_stop()  # one that an import swallowed
        return main()  # which answers signals itself once a command runs
    except (Interrupted, ImportError) as exc:  # while importing, or before main's own handling began
        signal_name = interrupted_by(exc)
        if signal_name is None:
            raise
        print(f"dashcam: interrupted by {signal_name}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(run())
