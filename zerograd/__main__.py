"""``python -m zerograd`` runs the ``zerograd`` command."""
import sys

from zerograd.cli import main

sys.exit(main())
