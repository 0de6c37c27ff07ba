"""The oracle's tests import the shared test helpers of tests/ (the collector runner) and their own modules."""

import sys
from pathlib import Path

for folder in (Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
