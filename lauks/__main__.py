import sys

from lauks.cli import main

sys.exit(main())
