"""deploy/compose.yaml, checked without a Docker engine: valid against the compose
specification's JSON schema (before and after interpolating the variables that
deploy/compose-env.sh writes), wired as the platform needs, and its PostgreSQL init script run
for real against the local PostgreSQL."""
import hashlib
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
SCHEMA = DEPLOY / "schemas" / "compose-spec.json"
PROCESSES = {"customer": "services/customer", "order": "services/order", "inventory": "services/inventory",
             "billing": "services/billing", "aftersales": "services/aftersales", "gateway": "gateway"}
SERVICES = [p for p in PROCESSES if p != "gateway"]
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def errors(validator, document):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def interpolate(text, env):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}."""
    missing = []

    def replace(match):
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?") and not value:
            missing.append(name)
            return ""
        return value or ""

    result = VARIABLE.sub(replace, text)
    return result, missing


def read_env_file(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def generated_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compose-env")
    shutil.copy(DEPLOY / "compose-env.sh", folder)
    for _ in range(2):  # a second run keeps what the first wrote
        subprocess.run(["sh", str(folder / "compose-env.sh")], check=True, capture_output=True, timeout=30)
    return folder / ".env"


def test_vendored_schema_is_the_pinned_packages_copy():
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", (DEPLOY / "schemas/README.md").read_text()).group(1)
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == recorded
    import check_jsonschema

    packaged = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    assert packaged.read_bytes() == SCHEMA.read_bytes(), (
        "check-jsonschema's compose-spec.json differs from deploy/schemas/compose-spec.json: copy it (see the README there)")


def test_compose_file_matches_the_compose_specification(compose, validator):
    assert errors(validator, compose) == []


def test_compose_env_script_sets_every_required_variable(generated_env, validator):
    env = read_env_file(generated_env)
    assert oct(generated_env.stat().st_mode & 0o777) == "0o600"
    assert len(set(env.values())) >= 10, "random values, not one repeated"
    text, missing = interpolate(COMPOSE.read_text(), env)
    assert missing == []
    assert errors(validator, yaml.safe_load(text)) == []
    # amqp URI survives the password (URL-safe characters only)
    assert re.fullmatch(r"[A-Za-z0-9]+", env["RABBITMQ_PASSWORD"])


def test_without_the_env_file_compose_refuses_to_start():
    _, missing = interpolate(COMPOSE.read_text(), {})
    assert {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "GATEWAY_TOKEN_SECRET", "GATEWAY_ADMIN_PASSWORD",
            "GRAFANA_ADMIN_PASSWORD"} | {f"{p.upper()}_DB_PASSWORD" for p in PROCESSES} <= set(missing)


def test_no_secret_is_written_in_the_compose_file(compose):
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|_PASS$", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), f"{name}.{key} must come from deploy/.env"


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_every_process_is_built_here_checked_and_waits_for_what_it_needs(compose, process):
    service = compose["services"][process]
    assert service["build"] == {"context": "..", "dockerfile": f"{PROCESSES[process]}/Dockerfile"}
    assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert "/ready" in " ".join(service["healthcheck"]["test"])
    needs = {name: spec["condition"] for name, spec in service["depends_on"].items()}
    assert needs["postgres"] == needs["rabbitmq"] == "service_healthy"
    if process == "gateway":
        assert {needs[s] for s in SERVICES} == {"service_healthy"}, "the gateway starts after every service"
    env = service["environment"]
    assert env["DB_USER"] == f"sales_{process}" and f"{process.upper()}_DB_PASSWORD" in env["DB_PASSWORD"]
    assert "DB_NAME" not in env, "config.yaml's default sales_<name> is the database the init script makes"
    assert env["QUORUM_QUEUES"] == "true" and "@rabbitmq:5672/" in env["AMQP_URI"]
    assert service["read_only"] is True and "ALL" in service["cap_drop"]
    assert "MIGRATE_ON_START" not in env, "the entrypoint migrates before starting"


def test_infrastructure_and_observability_are_wired(compose):
    services = compose["services"]
    assert "-management" in services["rabbitmq"]["image"]
    plugins = (DEPLOY / "rabbitmq/enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
    assert "./postgres/init-databases.sh:/docker-entrypoint-initdb.d/10-init-databases.sh:ro" in services["postgres"]["volumes"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in services["prometheus"]["volumes"]
    grafana_volumes = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana_volumes
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/sales-platform.yaml").read_text())
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in grafana_volumes
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"


# -- the init script, run against the local PostgreSQL with throw-away names -------------------

def psql(*args, database="postgres"):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-Atc", *args],
                          capture_output=True, text=True, timeout=30)


def test_postgres_init_script_makes_one_owned_database_and_role_per_process():
    if shutil.which("psql") is None or psql("SELECT 1").returncode != 0:
        pytest.skip("no local PostgreSQL reachable as postgres@127.0.0.1")
    prefix = f"deploytest_{uuid.uuid4().hex[:8]}_"
    names = ["customer", "order"]
    env = {"PATH": "/usr/bin:/bin", "PGHOST": "127.0.0.1", "POSTGRES_USER": "postgres", "DB_PREFIX": prefix,
           "SALES_DATABASES": " ".join(names), "CUSTOMER_DB_PASSWORD": "pw-'quoted\"", "ORDER_DB_PASSWORD": "x"}
    try:
        result = subprocess.run(["bash", str(DEPLOY / "postgres/init-databases.sh")], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        for name in names:
            owner = psql(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{prefix}{name}'")
            assert owner.stdout.strip() == f"{prefix}{name}"
            can = psql(f"SELECT has_database_privilege('{prefix}order', '{prefix}{name}', 'CONNECT')")
            assert can.stdout.strip() == ("t" if name == "order" else "f"), "only its own role may connect"
        login = psql(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{prefix}customer'")
        assert login.stdout.strip() == "t"
        missing = subprocess.run(["bash", str(DEPLOY / "postgres/init-databases.sh")],
                                 env={**env, "SALES_DATABASES": "billing"}, capture_output=True, text=True)
        assert missing.returncode != 0 and "BILLING_DB_PASSWORD is not set" in missing.stderr
    finally:
        for name in names:
            psql(f'DROP DATABASE IF EXISTS "{prefix}{name}"')
            psql(f'DROP ROLE IF EXISTS "{prefix}{name}"')
