"""``python -m newswatch.pipelines.cli``: the same as the ``newswatch`` command."""

import sys

from newswatch.pipelines.cli import main

sys.exit(main())
