"""`python -m aivault_ops`."""

import sys

from aivault_ops.main import main

sys.exit(main())
