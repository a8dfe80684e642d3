"""A stop signal whose exception Python drops (raised inside a weakref callback) still stops the program.

Seen in CI: a SIGTERM landing in importlib's module-lock callback printed "Exception ignored ...
Traceback" and `dashcam run` went on to record the whole clip. Each case runs in its own interpreter,
because the handlers and sys.unraisablehook are process-wide.
"""
import subprocess
import sys
import textwrap

LOSE_A_SIGNAL = textwrap.dedent("""
    import signal, sys, weakref
    from edge.errors import Interrupted, raise_pending_stop, unwind_on_stop_signals

    unwind_on_stop_signals()

    class Thing:
        pass

    def callback(_ref):
        {inside_callback}

    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing  # the callback runs now; what it raises, Python prints and drops
    print("still running", flush=True)
    try:
        raise_pending_stop()
    except Interrupted as exc:
        print(f"stopped by {{exc.signal_name}}", flush=True)
        sys.exit(130)
    print("finished", flush=True)
""")


def run_snippet(inside_callback: str) -> subprocess.CompletedProcess[str]:
    code = LOSE_A_SIGNAL.format(inside_callback=inside_callback)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_signal_lost_in_a_callback_is_raised_at_the_next_checkpoint_without_a_traceback():
    result = run_snippet("signal.raise_signal(signal.SIGTERM)")
    assert result.returncode == 130, result.stderr
    assert result.stdout.splitlines() == ["still running", "stopped by SIGTERM"]
    assert result.stderr == ""


def test_other_errors_in_callbacks_are_still_printed_and_no_stop_is_invented():
    result = run_snippet("raise ValueError('a real bug')")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["still running", "finished"]
    assert "Exception ignored" in result.stderr and "ValueError: a real bug" in result.stderr


ANSWERED_THEN_AGAIN = textwrap.dedent("""
    import signal
    from edge.cli import main
    from edge.errors import Interrupted, raise_interrupted

    try:
        raise_interrupted(signal.SIGTERM, None)  # a stop that an import swallowed
    except Interrupted:
        pass
    print(main(["config"]) , main(["config"]), flush=True)
""")


def test_a_stop_main_has_answered_does_not_stop_the_next_main_in_the_same_process():
    result = subprocess.run([sys.executable, "-c", ANSWERED_THEN_AGAIN], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines()[-1] == "130 0", result.stdout[-500:] + result.stderr
    assert result.stderr.count("dashcam: interrupted by SIGTERM") == 1
