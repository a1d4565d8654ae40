import sys
from pathlib import Path

TESTS = Path(__file__).parent
# the repo root (for `sgm` without an install) and tests/ (for helpers such as parity.py)
for path in (TESTS.parent, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
