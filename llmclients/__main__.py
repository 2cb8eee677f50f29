"""``python -m llmclients``: the ``llmclients`` command."""

import sys

from .cli import main

sys.exit(main())
