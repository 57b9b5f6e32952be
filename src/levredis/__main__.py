"""``python -m levredis``: the redis-cli-shaped command line."""

import sys

from ._cli import main

sys.exit(main())
