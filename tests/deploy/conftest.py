"""Fixtures of the deploy checks: where the tools are, and promtool's install-or-skip rule.

The linters and schema packages are pinned in requirements.txt, so they are always in the
virtualenv. promtool comes from Debian's `prometheus` package: in CI (CI=true) it must be there
(.ci/run installs it); elsewhere a test that needs it is skipped with the command to install it.
"""
import importlib.util
import os
import shutil
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def find_tool(name):
    """A console script of the virtualenv (hadolint, shellcheck), else one on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def pinned_tool():
    def lookup(name):
        path = find_tool(name)
        if path is None:
            pytest.fail(f"{name} is missing from the virtualenv: run `make venv` (it is pinned in requirements.txt)")
        return path

    return lookup


@pytest.fixture(scope="session")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus package before `make test`")
        pytest.skip("promtool not installed: `sudo apt-get install -y --no-install-recommends prometheus` "
                    "(Debian's package; tests/deploy runs promtool only)")
    return path


@pytest.fixture(scope="session")
def kustomize_lite():
    """tests/deploy/kustomize_lite.py, loaded by path (tests are not a package)."""
    spec = importlib.util.spec_from_file_location("kustomize_lite", Path(__file__).with_name("kustomize_lite.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
