"""The code's shape, enforced (STYLE.md): pure domains, no service reaching into another."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / p.name).is_dir())
FRAMEWORKS = {"nameko", "psycopg2", "marshmallow", "kombu", "eventlet"}


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def python_files(folder):
    return [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]


def test_there_are_five_services():
    assert SERVICES == ["aftersales", "billing", "customer", "inventory", "order"]


@pytest.mark.parametrize("service", SERVICES)
def test_domain_imports_no_framework(service):
    domain = ROOT / "services" / service / service / "domain.py"
    if not domain.exists():
        pytest.skip(f"{service} has no domain module yet")
    bad = [m for m in imported_modules(domain) if m.split(".")[0] in FRAMEWORKS | {"shared"}]
    assert not bad, f"{domain.relative_to(ROOT)} imports {bad}: the domain is standard library only"


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service):
    others = set(SERVICES + ["gateway"]) - {service}
    offenders = []
    for path in python_files(ROOT / "services" / service):
        for module in imported_modules(path):
            if module.split(".")[0] in others:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert not offenders, offenders


def test_gateway_imports_no_service():
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in python_files(ROOT / "gateway")
                 for m in imported_modules(p) if m.split(".")[0] in SERVICES]
    assert not offenders, offenders


def test_the_kit_imports_no_service_or_gateway():
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in python_files(ROOT / "shared")
                 for m in imported_modules(p) if m.split(".")[0] in set(SERVICES) | {"gateway"}]
    assert not offenders, offenders


@pytest.mark.parametrize("service", SERVICES)
def test_only_service_py_imports_nameko_entrypoints(service):
    entry_modules = {"nameko.rpc", "nameko.events", "nameko.timer", "shared.entrypoints"}
    offenders = []
    for path in python_files(ROOT / "services" / service / service):
        if path.name == "service.py":
            continue
        offenders += [f"{path.relative_to(ROOT)}: {m}" for m in imported_modules(path) if m in entry_modules]
    assert not offenders, offenders


def test_the_check_itself_catches_a_violation(tmp_path):
    bad = tmp_path / "domain.py"
    bad.write_text("import os\nfrom nameko.rpc import rpc\nimport psycopg2.extras\n")
    assert [m for m in imported_modules(bad) if m.split(".")[0] in FRAMEWORKS] == ["nameko.rpc", "psycopg2.extras"]
