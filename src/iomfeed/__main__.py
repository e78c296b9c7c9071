"""``python -m iomfeed``: the same as the ``iomfeed`` command."""

import sys

from .cli import main

sys.exit(main())
