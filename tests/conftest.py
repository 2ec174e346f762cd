"""Test-wide settings.

The command-line tool remembers its ``--backend auto`` choice across runs
(:mod:`streamprint.runtime.memo`); tests measure afresh unless they opt in with their own
memo file (``tests/unit/test_selection_memo.py``), so no test depends on another's choice
or writes to the user's cache directory.
"""

import os

os.environ.setdefault("STREAMPRINT_SELECTION_MEMO", "off")
