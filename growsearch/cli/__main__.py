"""``python -m growsearch.cli``: the ``growsearch`` command."""

import sys

from growsearch.cli.commands import main

sys.exit(main())
