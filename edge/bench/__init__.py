"""Measuring anonymization: ground-truth loaders, redaction-coverage metrics and the `dashcam bench` runner.

annotations.py loads any supported format (truth.py holds the records and the counting,
one module per format parses); metrics.py accumulates blur recall frame by frame;
report.py renders runs side by side; progress.py is the CLI's progress line; runner.py
runs the real pipeline over an annotated input and scores it (`dashcam bench`).
"""
