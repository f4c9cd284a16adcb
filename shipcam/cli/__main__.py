"""``python -m shipcam.cli``: the same command line as ``shipcam``."""

import sys

from shipcam.cli.main import main

sys.exit(main())
