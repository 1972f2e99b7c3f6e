"""``python -m coordinator.cli``: the ``agentmesh`` command."""

import sys

from coordinator.cli import main

sys.exit(main())
