"""Measuring anonymization: ground-truth loaders and redaction-coverage metrics."""
