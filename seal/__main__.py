"""`python -m seal` (and `torchrun -m seal`) run the command-line tool."""

import sys

from seal.cli.main import main

sys.exit(main())
