"""Privacy-first dashcam: detect faces and licence plates on the device and redact them before storage."""

__version__ = "0.1.0"
