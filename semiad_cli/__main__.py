"""``python -m semiad_cli <command> ...`` is the same as ``semiad <command> ...``."""

import sys

from semiad_cli.cli import main

sys.exit(main())
