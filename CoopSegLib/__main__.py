"""`python -m CoopSegLib` is the `coopseg` command."""

import sys

from CoopSegLib.cli import main

sys.exit(main())
