"""``python -m flows.cli``: the ``changevg`` command."""

import sys

from flows.cli._app import main

sys.exit(main())
