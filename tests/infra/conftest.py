"""The infra/ scripts (tf, validate, rehearse, stacks) are importable by these tests."""

import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))
