"""``python -m export.verify``."""

import sys

from export.verify.cli import main

sys.exit(main())
