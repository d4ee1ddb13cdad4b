"""``python -m orizuru_py``: the same as the ``orizuru`` command."""

import sys

from .ops.cli import main

sys.exit(main())
