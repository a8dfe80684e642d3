"""Storage of anonymized output: atomic files, video encoding, segments and their sidecars.

Everything here accepts `RedactedFrame` only; a raw `Frame` cannot be written.
"""
