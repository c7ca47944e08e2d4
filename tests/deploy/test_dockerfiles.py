"""The images, checked without a Docker engine: hadolint on every Dockerfile, their structure
(multi-stage, psycopg2 from source, slim runtime, non-root, exec-form entrypoint, health check,
no backdoor), one recipe for all six, and the entrypoint's behaviour under POSIX sh."""
import importlib.util
import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "deploy" / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
PROCESSES = {"customer": "services/customer", "order": "services/order", "inventory": "services/inventory",
             "billing": "services/billing", "aftersales": "services/aftersales", "gateway": "gateway"}
DOCKERFILES = [RECIPE] + [ROOT / folder / "Dockerfile" for folder in PROCESSES.values()]
IDS = [str(p.relative_to(ROOT)) for p in DOCKERFILES]


def instructions(path):
    return [i for i in DockerfileParser(str(path)).structure if i["instruction"] != "COMMENT"]


def stages(path):
    """[(stage name, [instructions])] in order."""
    result = []
    for item in instructions(path):
        if item["instruction"] == "FROM":
            words = item["value"].split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append((name, [item]))
        elif result:
            result[-1][1].append(item)
    return result


def values(items, instruction):
    return [i["value"] for i in items if i["instruction"] == instruction]


def port_of(folder):
    config = (ROOT / folder / "config.yaml").read_text()
    return int(re.search(r"WEB_ADDRESS:[^:]+:(\d+)\}", config).group(1))


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_hadolint_finds_nothing(path, pinned_tool):
    result = subprocess.run(
        [pinned_tool("hadolint"), "--no-color", "--config", str(ROOT / "deploy/docker/hadolint.yaml"), str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_pass_shellcheck(pinned_tool):
    scripts = sorted(str(p) for p in (ROOT / "deploy").rglob("*.sh")) + [str(ROOT / ".ci/run")]
    result = subprocess.run([pinned_tool("shellcheck"), "--format=gcc", *scripts],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=IDS)
def test_image_structure(path):
    text = path.read_text()
    built = stages(path)
    names = [name for name, _ in built]
    assert names == ["builder", "runtime", "service"], f"stages builder -> runtime -> service, got {names}"
    (_, builder), (_, runtime), (_, final) = built

    # builder: compilers and libpq headers; psycopg2 compiled from source
    builder_runs = " ".join(values(builder, "RUN"))
    assert "libpq-dev" in builder_runs and "build-essential" in builder_runs
    assert "--no-binary psycopg2" in builder_runs

    # runtime: slim base, libpq5 only, no compiler; the venv comes from the builder
    assert any("slim" in arg for arg in values(instructions(path), "ARG") if arg.startswith("PYTHON_IMAGE="))
    runtime_runs = " ".join(values(runtime, "RUN"))
    assert "libpq5" in runtime_runs
    assert not re.search(r"build-essential|libpq-dev|gcc", runtime_runs + " ".join(values(final, "RUN")))
    assert "--from=builder /opt/venv /opt/venv" in values(runtime, "COPY")
    assert any(v.startswith("shared/ ") for v in values(runtime, "COPY")), "the kit is in every image"

    # final stage: non-root (numeric, so Kubernetes' runAsNonRoot can verify it)
    users = values(final, "USER")
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER must be a numeric non-root uid, got {users[-1]!r}"

    # exec-form entrypoint (PID 1 gets the signals), then `exec nameko run` inside it
    entrypoint = values(final, "ENTRYPOINT")
    assert len(entrypoint) == 1 and json.loads(entrypoint[0]) == ["/usr/local/bin/sales-entrypoint"]
    assert json.loads(values(final, "CMD")[-1]) == ["run"]

    # a health check in exec form on /health
    healthcheck = values(final, "HEALTHCHECK")
    assert len(healthcheck) == 1 and "CMD [" in healthcheck[0] and "/health" in healthcheck[0]

    # no debug backdoor anywhere
    assert "backdoor" not in text.lower()


def normalised(path):
    """Instructions with the service arguments' defaults blanked (the only allowed difference)."""
    result = []
    for item in instructions(path):
        value = item["value"]
        if item["instruction"] == "ARG" and value.split("=")[0] in ("SERVICE", "PORT", "SERVICE_DIR"):
            value = value.split("=")[0]
        result.append((item["instruction"], value))
    return result


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_each_process_dockerfile_is_the_common_recipe(process):
    folder = PROCESSES[process]
    path = ROOT / folder / "Dockerfile"
    assert normalised(path) == normalised(RECIPE), (
        f"{folder}/Dockerfile differs from deploy/docker/Dockerfile beyond its ARG defaults: "
        "change the recipe in deploy/docker/Dockerfile and copy it")
    args = dict(v.split("=", 1) for v in values(instructions(path), "ARG") if "=" in v)
    assert args["SERVICE"] == process
    assert args["PORT"] == str(port_of(folder)), "PORT matches the WEB_ADDRESS default in config.yaml"
    if folder == "gateway":
        assert args["SERVICE_DIR"] == "gateway"


def test_dockerignore_keeps_secrets_and_git_out():
    lines = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".env.*", ".git/", ".venv/"} <= lines


def test_the_gateway_image_carries_the_console_and_its_charting_library():
    """Issue 12: the gateway image copies gateway/, so the console's files and the ECharts that `make venv`
    fetched (gateway/console/vendor, pinned in vendor.json) must reach the build context; `make images`
    fetches them first."""
    import fnmatch

    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "!"))]
    for path in ("gateway/console/static/index.html", "gateway/console/static/app.js",
                 "gateway/console/vendor/echarts.min.js", "gateway/console/vendor/echarts.LICENSE.txt"):
        prefixes = ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 2)]
        ignored = [p for p in patterns for prefix in prefixes if fnmatch.fnmatch(prefix, p.rstrip("/"))]
        assert not ignored, f"{path} is left out of the image by .dockerignore {ignored}"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^images: \$\(CONSOLE_VENDOR\)", makefile, re.M), "make images fetches the console's vendor files"
    assert re.search(r"^venv: .*\$\(CONSOLE_VENDOR\)", makefile, re.M), "make venv (and so make up) fetches them"


# -- what an image installs -----------------------------------------------------------------------

def load_image_requirements():
    spec = importlib.util.spec_from_file_location("image_requirements", ROOT / "deploy/docker/image_requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_images_install_psycopg2_from_source_and_no_dev_tools():
    module = load_image_requirements()
    requirements = (ROOT / "requirements.txt").read_text()
    not_in_image = (ROOT / "deploy/docker/not-in-image.txt").read_text()
    pins = dict(line.split("==") for line in module.image_requirements(requirements, not_in_image))
    pinned = dict(re.match(r"^(\S+)==(\S+)", line).groups() for line in requirements.splitlines()
                  if re.match(r"^\S+==", line))
    assert pins["psycopg2"] == pinned["psycopg2-binary"]
    assert "psycopg2-binary" not in pins
    excluded = module.excluded_names(not_in_image)
    for name in excluded:
        assert name in {module.canonical(n) for n in pinned}, f"not-in-image.txt names {name}, not in requirements.txt"
        assert name not in {module.canonical(n) for n in pins}
    for name in ("nameko", "eventlet", "kombu", "prometheus-client", "tzdata"):
        assert name in pins


# -- the entrypoint, run for real under POSIX sh with stand-ins for python and nameko -------------

@pytest.fixture
def fake_image(tmp_path):
    app = tmp_path / "app"
    (app / "services/order/migrations").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name in ("python", "nameko"):
        stub = bin_dir / name
        stub.write_text(textwrap.dedent(f"""\
            #!/bin/sh
            echo "{name} pid=$$ $*" >> "{log}"
            """))
        stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SERVICE": "order", "SERVICE_DIR": "services/order",
           "APP_DIR": str(app)}
    return env, log


def run_entrypoint(env, *args, extra=None):
    process = subprocess.Popen(["sh", str(ENTRYPOINT), *args], env={**env, **(extra or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=20)
    return process.pid, process.returncode, err


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_entrypoint_migrates_then_execs_nameko(fake_image):
    env, log = fake_image
    pid, code, err = run_entrypoint(env)
    assert code == 0, err
    migrate, run = calls(log)
    assert migrate.endswith("-m shared.migrate --dbname sales_order services/order/migrations")
    # exec: nameko has the entrypoint's own pid, so the runtime's SIGTERM reaches it
    assert run == f"nameko pid={pid} run --config services/order/config.yaml order.service:OrderService"


def test_entrypoint_skips_migrations_when_told_and_passes_options(fake_image):
    env, log = fake_image
    _, code, err = run_entrypoint(env, "run", "--define", "X=1", extra={"MIGRATE_ON_START": "0", "DB_NAME": "x"})
    assert code == 0, err
    assert [c.split(" ", 2)[2] for c in calls(log)] == [
        "run --config services/order/config.yaml order.service:OrderService --define X=1"]


def test_entrypoint_migrate_only(fake_image):
    env, log = fake_image
    _, code, err = run_entrypoint(env, "migrate", extra={"DB_NAME": "orders_eu"})
    assert code == 0, err
    assert [c.split(" ", 2)[2] for c in calls(log)] == [
        "-m shared.migrate --dbname orders_eu services/order/migrations"]


@pytest.mark.parametrize("args", [("--backdoor-port", "3000"), ("run", "--backdoor-port=3000"), ("sh",)])
def test_entrypoint_refuses_backdoors_and_other_commands(fake_image, args):
    env, log = fake_image
    _, code, err = run_entrypoint(env, *args)
    assert code == 64, err
    assert calls(log) == []


def test_entrypoint_is_posix_sh():
    result = subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    assert os.access(ENTRYPOINT, os.X_OK) or "--chmod=0755" in RECIPE.read_text()
