"""``python -m mmtutor``: the same as the ``mmtutor`` console command."""

import sys

from mmtutor.cli import main

sys.exit(main())
