"""``python -m diverseevol.cli``: the same as the ``diverseevol`` command."""

import sys

from . import main

sys.exit(main())
