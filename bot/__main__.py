"""`python -m bot` is `minyi`."""

import sys

from bot.app.cli import main

sys.exit(main())
