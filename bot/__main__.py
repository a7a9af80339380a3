"""`python -m bot` is `minyi`."""

import sys

from .cli import main

sys.exit(main())
