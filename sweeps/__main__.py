import sys

from sweeps.cli import entry

sys.exit(entry())
