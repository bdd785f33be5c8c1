"""``python -m otrace`` is the ``otrace`` command."""

import sys

from otrace.cli import main

sys.exit(main())
