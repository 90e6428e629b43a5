"""`python -m mppsim.recorder` is the `mppsim-recorder` command."""
import sys

from mppsim.recorder.cli import main

sys.exit(main())
