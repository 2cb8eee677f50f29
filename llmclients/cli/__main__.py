"""``python -m llmclients.cli``: the ``llmclients`` command, as ``python -m llmclients`` runs it."""

import sys

from . import main

sys.exit(main())
