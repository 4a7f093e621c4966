"""`python -m loopspec_conformance ...` is the `loopspec-conformance` command."""

import sys

from .cli import main

sys.exit(main())
