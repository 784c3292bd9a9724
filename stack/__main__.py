"""``python -m stack``: the ``lauks`` command, for child processes started with this interpreter."""

import sys

from stack.cli import main

sys.exit(main())
