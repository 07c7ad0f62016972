"""``python -m rollbackctl.cli``: the same as the `rollbackctl` console script."""

import sys

from . import main

sys.exit(main())
