"""Department autonomy (issue 13): each process is tested, packaged and started on its own.

  * its tests (services/<svc>/tests, gateway/tests) import nothing of another process, so
    `make test-<name>` runs them with only the kit and that process on PYTHONPATH;
  * its own dependency list (pyproject.toml) is complete and minimal: every third-party module its
    code imports — with the kit modules it uses, and what its config.yaml names — is listed, and
    nothing is listed that it does not use (save the few read at run time, named below with why);
  * its pins are the platform's pins (requirements.txt);
  * it starts from what its image holds (the kit and its own folder, nothing else) with only
    PostgreSQL and RabbitMQ, and reports its version.
"""
import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["customer", "order", "inventory", "billing", "aftersales"]
PROCESSES = SERVICES + ["gateway"]
CLASSES = {"customer": "CustomerService", "order": "OrderService", "inventory": "InventoryService",
           "billing": "BillingService", "aftersales": "AftersalesService", "gateway": "GatewayService"}
# Listed but never imported by name: read at run time by what the process runs on.
RUNTIME_ONLY = {
    "pyyaml": "nameko reads config.yaml with it (`nameko run --config`)",
    "tzdata": "zoneinfo's time-zone data (Asia/Shanghai business dates) where the OS has none (slim images)",
}


def home(process):
    return ROOT / ("gateway" if process == "gateway" else f"services/{process}")


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(path):
    """Every absolute import of a file (`from a import b` gives `a` and `a.b`), nested ones too."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def path_literals(path):
    """The string constants of a file's code (docstrings left out), e.g. "services/x/migrations"."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def python_files(folder):
    return [p for p in sorted(folder.rglob("*.py")) if "__pycache__" not in p.parts]


# -- tests alone ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_tests_import_nothing_of_another_process(process):
    others = set(PROCESSES) - {process}
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in python_files(home(process) / "tests")
                 for m in imported_modules(p) if m.split(".")[0] in others]
    offenders += [f"{p.relative_to(ROOT)}: uses {text!r}" for p in python_files(home(process) / "tests")
                  for text in path_literals(p) if any(text.startswith(home(o).relative_to(ROOT).as_posix() + "/")
                                                      for o in others)]
    assert not offenders, f"{process}'s tests reach into another process (make test-{process} runs them alone): " \
                          f"{offenders}"


def test_make_test_alone_puts_only_the_kit_and_the_process_on_the_path():
    for process in ("order", "gateway"):
        out = subprocess.run(["make", "-n", f"test-{process}"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
        line = next(line for line in out.splitlines() if "nameko test" in line)
        folder = home(process).relative_to(ROOT)
        assert line.startswith(f"PYTHONPATH={ROOT}:{ROOT}/{folder} "), line
        assert f"nameko test {folder}/tests" in line, line


# -- dependency lists ------------------------------------------------------------------------------------
def kit_module_file(name):
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(process, package=None, config=None):
    """{top-level module: [files importing it]} of what the process runs: its package, the kit
    modules it imports (transitively), and the kit modules its config.yaml names."""
    package = package or home(process) / process
    config = config or home(process) / "config.yaml"
    todo = python_files(package)
    if config.is_file():
        todo += [f for f in (kit_module_file(m.rsplit(".", 1)[0]) for m in
                             re.findall(r"\bshared(?:\.\w+)+", config.read_text())) if f]
    seen, found = set(), {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top == "shared":
                kit = kit_module_file(module)
                if kit is not None and "testing" not in kit.relative_to(ROOT).parts:
                    todo.append(kit)
            elif top != process and top not in sys.stdlib_module_names and top not in PROCESSES:
                found.setdefault(top, set()).add(path.name)
    return found


def distributions(modules):
    index = packages_distributions()
    return {normalize(dist): sorted(files) for module, files in modules.items()
            for dist in index.get(module, [module])}


def listed(process):
    project = tomllib.loads((home(process) / "pyproject.toml").read_text())["project"]
    return {normalize(re.split(r"[=<>!~;\[ ]", spec, maxsplit=1)[0]): spec for spec in project["dependencies"]}


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_dependency_list_has_everything_it_imports_and_nothing_else(process):
    needed = distributions(third_party_imports(process))
    mine = listed(process)
    missing = {dist: files for dist, files in needed.items() if dist not in mine}
    assert not missing, f"{home(process).relative_to(ROOT)}/pyproject.toml does not list {missing}"
    unused = sorted(set(mine) - set(needed) - set(RUNTIME_ONLY))
    assert not unused, f"{home(process).relative_to(ROOT)}/pyproject.toml lists {unused}, which {process} never imports"


@pytest.mark.parametrize("process", PROCESSES)
def test_a_process_pins_are_the_platform_pins(process):
    platform = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            platform[normalize(spec.split("==", 1)[0])] = spec.replace(" ", "")
    for name, spec in listed(process).items():
        assert "==" in spec, f"{process}: {spec} is not pinned"
        assert platform.get(name) == spec.replace(" ", ""), f"{process}: {spec}, the platform pins {platform.get(name)}"


def test_the_dependency_check_sees_the_kit_and_what_is_missing(tmp_path):
    package = tmp_path / "probe"
    package.mkdir()
    (package / "service.py").write_text("import json\nimport requests\nfrom shared import workdays\n"
                                        "def f():\n    import jwt\n")
    config = tmp_path / "config.yaml"
    config.write_text("LOGGING: {formatters: {json: {(): shared.logs.JsonFormatter}}}\n")
    found = distributions(third_party_imports("probe", package, config))
    assert {"requests", "pyjwt", "chinesecalendar"} <= set(found), found
    assert "json" not in found and "shared" not in found


# -- started alone ------------------------------------------------------------------------------------------
def _image_tree(process, root):
    """What the process's image holds (deploy/docker/Dockerfile): the kit and its own folder."""
    shutil.copytree(ROOT / "shared", root / "shared", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    target = root / home(process).relative_to(ROOT)
    shutil.copytree(home(process), target, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return target


def test_each_process_starts_alone_from_what_its_image_holds(tmp_path, make_database, rabbit_config):
    """All six at once, each on its own fresh database and none able to import another; only
    PostgreSQL and RabbitMQ are there. Each becomes ready and reports its own version."""
    from nameko import config
    from nameko.testing.utils import find_free_port

    from shared.testing.plugin import pg_settings

    settings = pg_settings()
    started = {}
    try:
        for process in PROCESSES:
            app = tmp_path / process
            folder = _image_tree(process, app)
            db = make_database(f"{home(process).relative_to(ROOT)}/migrations")
            port = find_free_port()
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
            env.update(PYTHONPATH=f"{app}:{folder}", AMQP_URI=config["AMQP_URI"], DB_NAME=db, WEB_ADDRESS=f"127.0.0.1:{port}",
                       DB_HOST=settings["host"], DB_PORT=str(settings["port"]), DB_USER=settings["user"],
                       DB_PASSWORD=settings["password"] or "", PYTHONWARNINGS="ignore",
                       GATEWAY_TOKEN_SECRET="x" * 48, GATEWAY_ADMIN_PASSWORD="alone-" + "y" * 20)
            log = open(tmp_path / f"{process}.log", "wb")
            proc = subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(folder / "config.yaml"),
                                     f"{process}.service:{CLASSES[process]}"], cwd=app, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            started[process] = (proc, port, log)
        deadline = time.monotonic() + 60
        for process, (proc, port, _) in started.items():
            while True:
                assert proc.poll() is None, f"{process} exited:\n{(tmp_path / f'{process}.log').read_text()[-3000:]}"
                try:
                    if requests.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, \
                    f"{process} not ready alone:\n{(tmp_path / f'{process}.log').read_text()[-3000:]}"
                time.sleep(0.2)
            health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
            version = tomllib.loads((home(process) / "pyproject.toml").read_text())["project"]["version"]
            assert health["version"] == version, health
    finally:
        for proc, _, log in started.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
