"""``python -m rollbackctl``: the same as the `rollbackctl` console script."""

import sys

from .cli import main

sys.exit(main())
