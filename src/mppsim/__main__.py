"""`python -m mppsim` is the `mppsim` command."""
import sys

from mppsim.cli import main

sys.exit(main())
