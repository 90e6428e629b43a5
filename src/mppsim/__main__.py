"""`python -m mppsim` is the `mppsim` command."""
import sys

from mppsim.app.cli import main

sys.exit(main())
