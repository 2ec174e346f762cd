"""``python -m streamprint``: the same as the ``streamprint`` console script."""

import sys

from streamprint.cli import main

sys.exit(main())
