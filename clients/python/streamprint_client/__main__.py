"""``python -m streamprint_client``: the same as the ``streamprint-client`` command."""

import sys

from streamprint_client.cli import main

sys.exit(main())
