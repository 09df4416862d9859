"""``python -m diverseevol``: the same as the ``diverseevol`` command."""

import sys

from .cli import main

sys.exit(main())
