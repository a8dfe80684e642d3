"""Privacy-first dashcam: detect faces and licence plates on the device and redact them before storage."""

from pathlib import Path

__version__ = "0.1.0"

# The built-in sample drive (video and its NMEA log), shipped inside the package.
SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"
