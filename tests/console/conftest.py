"""Browser tests of the sales console (issue 12): Playwright for Python driving Debian's Chromium,
headless. Chromium comes from the Debian package (installed here when missing, as root; .ci/run does
the same); Playwright never downloads a browser. The browser steps run in a process of their own
(tests/console/browser.py says why); screenshots go to $CONSOLE_SCREENSHOTS (default
/tmp/console-shots), outside git."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.e2e import conftest as e2e

start_platform = e2e.start_platform  # the end-to-end fixture: real processes, fresh databases, own vhost

CHROMIUM = "/usr/bin/chromium"
# Debian's packages: the browser, and a Chinese font (the console's labels are Chinese; without one
# the screenshots show empty boxes)
PACKAGES = {"chromium": CHROMIUM, "fonts-wqy-microhei": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"}
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _install_chromium():
    missing = [name for name, path in PACKAGES.items() if not os.path.exists(path)]
    if not missing:
        return
    if os.geteuid() != 0:
        pytest.fail(f"install Debian's {' '.join(missing)} (apt-get install -y {' '.join(missing)})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    for name, path in PACKAGES.items():
        assert os.path.exists(path), f"apt-get installed {name} but {path} is not there"


@pytest.fixture(scope="session")
def chromium():
    _install_chromium()
    return CHROMIUM


_TAKEN = []  # the screenshot folders used in this run, named in the summary


@pytest.fixture(scope="session")
def shots():
    """Where the screenshots go (named at the end of the run)."""
    folder = pathlib.Path(os.environ.get("CONSOLE_SCREENSHOTS", "/tmp/console-shots"))
    folder.mkdir(parents=True, exist_ok=True)
    _TAKEN.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter):
    for folder in _TAKEN:
        terminalreporter.write_line(f"console screenshots ({len(list(folder.glob('*.png')))}): {folder}")


@pytest.fixture
def browse(chromium, shots):
    """`browse(step, base=..., prefix=..., **arguments)`: run a step of tests/console/browser.py in its
    own process and return what the page showed."""

    def run(step, **arguments):
        arguments["shots"] = str(shots)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        done = subprocess.run([sys.executable, "-m", "tests.console.browser", step, json.dumps(arguments)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"browser step {step} failed:\n{done.stderr[-6000:]}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run
