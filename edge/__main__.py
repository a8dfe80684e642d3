"""`python -m edge` runs the `dashcam` command."""
from edge.cli import main

raise SystemExit(main())
