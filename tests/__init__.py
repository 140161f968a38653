"""The test suite: ``tests/unit/`` starts nothing, ``tests/e2e/`` runs against real servers."""

import sys

# Where the environment sets PYTHONDONTWRITEBYTECODE, every run would compile the package
# and rewrite every test module's asserts anew: about 2 s of tests/unit/'s run. The suite
# keeps its bytecode in __pycache__ (ignored by git) all the same.
sys.dont_write_bytecode = False
