"""The fault suite's gate: a slow fault run (`fault_suite` fixture) runs in `make test-faults`
(RUN_FAULTS=1) or when tests/faults is named on the command line; `make test` skips it. The fast
ones (one SIGKILL, every event twice) use no gate and run in `make test` too."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fault_suite(request):
    named = any(Path(arg.split("::")[0]).resolve().is_relative_to(ROOT / "tests" / "faults")
                for arg in request.config.args)
    if not (named or os.environ.get("RUN_FAULTS")):
        pytest.skip("fault suite: make test-faults")
