"""Storage of anonymized output: atomic files, video encoding, segments and their sidecars.

Everything here accepts `RedactedFrame` only; a raw `Frame` cannot be written.

    atomic.py     partial-fsync-rename writes and copies
    encoder.py    PyAV encoder; crash-safe fragmented MP4 for segments (measurements in its docstring)
    segments.py   SegmentRecorder: the pipeline sink that runs loop recording
    store.py      the recordings folder: names, locked/, listing, lock moves, deletes
    recovery.py   start-up clean-up after a crash or power cut
    retention.py  which segments to delete (pure functions): age presets and disk budget
    incident.py   incident-lock requests and windows
    lease.py      one recorder per folder; how `dashcam lock` finds it
    index.py      the SQLite trips index, rebuilt from sidecars when lost or corrupt
    export.py     `dashcam export`: clips, sidecars and GPX of a trip or segment
    button.py     the GPIO lock button (gpiod, imported only when configured)
    gpx.py, images.py
"""
