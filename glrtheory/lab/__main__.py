"""``python -m glrtheory.lab ...`` is ``glr lab ...``."""
import sys

from glrtheory.cli import main

sys.exit(main(["lab", *sys.argv[1:]]))
