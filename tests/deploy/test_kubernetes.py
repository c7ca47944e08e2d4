"""deploy/k8s: both overlays rendered (tests/deploy/kustomize_lite.py; the same as `kubectl
kustomize` where kubectl exists), every built-in object validated against the Kubernetes
OpenAPI schemas (kubernetes-validate, strict: unknown fields fail) for the oldest and newest
Kubernetes we support, and the platform's rules checked on what the overlays produce."""
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["local", "production"]
PROCESSES = {"customer": "services/customer", "order": "services/order", "inventory": "services/inventory",
             "billing": "services/billing", "aftersales": "services/aftersales", "gateway": "gateway"}
# The oldest Kubernetes minor docs/DEPLOY.md supports, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.29", "1.37"]
# Custom resources of the operators the platform uses. kubernetes-validate has only the built-in
# API, and the operators' CRDs are not vendored: these are checked by the rules below instead.
OPERATOR_GROUPS = {"rabbitmq.com", "postgresql.cnpg.io", "monitoring.coreos.com"}
# Secrets the manifests read, and who makes them (none is in git).
SECRET_MAKERS = {"rabbitmq-default-user": "RabbitMQ Cluster Operator",
                 "gateway-secrets": "deploy/k8s/create-secrets.sh",
                 **{f"{name}-db-app": "CloudNativePG" for name in PROCESSES}}


@pytest.fixture(scope="module")
def rendered(kustomize_lite):
    return {overlay: kustomize_lite.build(K8S / "overlays" / overlay) for overlay in OVERLAYS}


def group_of(obj):
    return obj["apiVersion"].rpartition("/")[0]


def find(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found


def one(objects, kind, name):
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def port_of(folder):
    config = (ROOT / folder / "config.yaml").read_text()
    return int(re.search(r"WEB_ADDRESS:[^:]+:(\d+)\}", config).group(1))


def config_map_of(objects, deployment):
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (name,) = [source["configMapRef"]["name"] for source in container["envFrom"]]
    return one(objects, "ConfigMap", name)["data"]


# -- rendering ------------------------------------------------------------------------------------

def kubectl_kustomize(path):
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize", str(path)]
    kustomize = shutil.which("kustomize")
    return [kustomize, "build", str(path)] if kustomize else None


def identity(obj):
    return obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_builds_what_kustomize_builds(overlay, rendered):
    command = kubectl_kustomize(K8S / "overlays" / overlay)
    if command is None:
        pytest.skip("neither kubectl nor kustomize installed: the overlays are rendered by kustomize_lite only")
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    theirs = {identity(o): o for o in yaml.safe_load_all(output) if o}
    ours = {identity(o): o for o in rendered[overlay]}
    assert ours == theirs


def test_the_renderer_merges_configs_and_sets_images_as_kustomize_does(kustomize_lite, tmp_path):
    command = kubectl_kustomize(tmp_path)
    if command is None:
        pytest.skip("neither kubectl nor kustomize installed")
    base = tmp_path / "base"
    base.mkdir()
    (base / "kustomization.yaml").write_text(textwrap.dedent("""\
        resources: [pod.yaml]
        configMapGenerator:
          - name: settings
            literals: [A=1, B=<two & three>, C=Œ]
        """))
    (base / "pod.yaml").write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
            - name: c
              image: example/app:1
              envFrom: [{configMapRef: {name: settings}}]
              env: [{name: X, valueFrom: {configMapKeyRef: {name: settings, key: A}}}]
          volumes: [{name: v, configMap: {name: settings}}]
        """))
    (tmp_path / "kustomization.yaml").write_text(textwrap.dedent("""\
        namespace: elsewhere
        resources: [base]
        configMapGenerator:
          - {name: settings, behavior: merge, literals: [A=10, D=4]}
        images:
          - {name: example/app, newName: registry.example.com/app, newTag: "2.0"}
        patches:
          - target: {kind: Pod, name: "p.*"}
            patch: |-
              - {op: add, path: /metadata/labels, value: {tier: web}}
              - {op: add, path: /spec/containers/0/args, value: [run]}
        """))
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    theirs = {identity(o): o for o in yaml.safe_load_all(output) if o}
    assert {identity(o): o for o in kustomize_lite.build(tmp_path)} == theirs


def test_the_renderer_refuses_what_it_does_not_know(kustomize_lite, tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(kustomize_lite.Unsupported):
        kustomize_lite.build(tmp_path)


# -- Kubernetes schemas -------------------------------------------------------------------------

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_matches_the_kubernetes_schema(overlay, version, rendered):
    validated, problems = 0, []
    for obj in rendered[overlay]:
        if group_of(obj) in OPERATOR_GROUPS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            validated += 1
        except kubernetes_validate.ValidationError as error:
            path = ".".join(map(str, error.path))
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(error.message)
    assert not problems, "\n".join(problems)
    assert validated >= 31


def test_only_known_operator_resources_are_left_unvalidated(rendered):
    kinds = {(group_of(o), o["kind"]) for overlay in OVERLAYS for o in rendered[overlay]
             if group_of(o) in OPERATOR_GROUPS}
    assert kinds <= {("rabbitmq.com", "RabbitmqCluster"), ("postgresql.cnpg.io", "Cluster"),
                     ("monitoring.coreos.com", "PodMonitor")}


# -- the platform's rules --------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_each_process_deploys_safely(overlay, process, rendered):
    objects = rendered[overlay]
    deployment = one(objects, "Deployment", process)
    spec = deployment["spec"]
    assert "replicas" not in spec, "the HorizontalPodAutoscaler owns replicas"
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False

    (migrate,) = pod["initContainers"]
    (main,) = pod["containers"]
    assert migrate["args"] == ["migrate"] and main["args"] == ["run"]
    assert migrate["image"] == main["image"], "migrations come from the same image as the code"
    port = port_of(PROCESSES[process])
    assert main["ports"] == [{"name": "http", "containerPort": port}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert main["startupProbe"]["httpGet"]["path"] == "/health"
    env = {e["name"]: e for e in main["env"]}
    assert env["MIGRATE_ON_START"]["value"] == "0", "the init container migrated already"
    assert "WEB_ADDRESS" not in env, "the image listens on 0.0.0.0:<port>"
    for container in (migrate, main):
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and "memory" in resources["limits"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
        assert security["capabilities"]["drop"] == ["ALL"]
        assert container["envFrom"] == main["envFrom"]
        for variable in container.get("env", []):
            assert "value" not in variable or not re.search(r"PASSWORD|SECRET", variable["name"])
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] in SECRET_MAKERS, f"{process} reads Secret {ref['name']} that nobody makes"

    config = config_map_of(objects, deployment)
    assert config["QUORUM_QUEUES"] == "true"
    assert config["DB_HOST"] == f"{process}-db-rw" and config["DB_NAME"] == f"sales_{process}"
    assert env["DB_USER"]["valueFrom"]["secretKeyRef"] == {"name": f"{process}-db-app", "key": "username"}
    assert env["AMQP_URI"]["value"] == "pyamqp://$(AMQP_USER):$(AMQP_PASSWORD)@$(AMQP_HOST):5672/"
    assert config["AMQP_HOST"] == "rabbitmq"

    hpa = one(objects, "HorizontalPodAutoscaler", process)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": process}
    assert hpa["spec"]["minReplicas"] >= (2 if overlay == "production" else 1)
    pdb = one(objects, "PodDisruptionBudget", process)
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    service = one(objects, "Service", process)
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    database = one(objects, "Cluster", f"{process}-db")
    assert database["spec"]["bootstrap"]["initdb"] == {"database": f"sales_{process}", "owner": f"sales_{process}"}
    assert database["spec"]["instances"] >= (3 if overlay == "production" else 1)
    # every pod at the HPA's maximum, plus the rollout's surge pod, fits the database
    pool = int(config["DB_POOL_SIZE"])
    max_connections = int(database["spec"]["postgresql"]["parameters"]["max_connections"])
    assert (hpa["spec"]["maxReplicas"] + 1) * pool + 10 <= max_connections


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_in_git(overlay, rendered):
    assert find(rendered[overlay], "Secret") == []
    for path in K8S.rglob("*.yaml"):
        assert not re.search(r"(?i)(password|secret)\s*[:=]\s*['\"]?[A-Za-z0-9+/]{12,}", path.read_text()), path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_is_published_without_its_probes_and_metrics(overlay, rendered):
    objects = rendered[overlay]
    ingress = one(objects, "Ingress", "gateway")
    (rule,) = ingress["spec"]["rules"]
    paths = {(p["path"], p["pathType"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]}
    assert paths == {("/api", "Prefix", "gateway"), ("/docs", "Prefix", "gateway"), ("/console", "Prefix", "gateway")}
    assert one(objects, "Service", "gateway")["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    env = {e["name"] for e in one(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"GATEWAY_TOKEN_SECRET", "GATEWAY_ADMIN_PASSWORD"} <= env
    if overlay == "production":
        assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rabbitmq_cluster_and_namespace(overlay, rendered):
    objects = rendered[overlay]
    rabbit = one(objects, "RabbitmqCluster", "rabbitmq")
    replicas = rabbit["spec"]["replicas"]
    assert replicas == (3 if overlay == "production" else 1), "quorum queues want an odd number of nodes"
    namespace = one(objects, "Namespace", "sales")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"sales"}


def test_production_images_come_from_a_registry_with_a_version(rendered):
    for deployment in find(rendered["production"], "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"] + \
                deployment["spec"]["template"]["spec"]["initContainers"]:
            registry = container["image"].split("/")[0]
            tag = container["image"].rpartition(":")[2]
            assert "." in registry and re.fullmatch(r"[\w][\w.-]*", tag) and tag != "latest", container["image"]


def test_production_scrapes_every_process_with_the_job_names_the_rules_use(rendered):
    monitors = {m["metadata"]["name"]: m["spec"] for m in find(rendered["production"], "PodMonitor")}
    platform = monitors["sales-platform"]
    assert platform["jobLabel"] == "app.kubernetes.io/name"
    assert platform["podMetricsEndpoints"][0]["port"] == "http"
    components = {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
                  for d in find(rendered["production"], "Deployment")}
    assert components <= set(platform["selector"]["matchExpressions"][0]["values"])
    jobs = {r["replacement"] for e in monitors["rabbitmq"]["podMetricsEndpoints"] for r in e["relabelings"]}
    assert jobs == {"rabbitmq", "rabbitmq-queues"}


def test_create_secrets_script_makes_the_gateway_secret_once(tmp_path):
    log = tmp_path / "kubectl.log"
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$*" >> "{log}"
        case "$*" in
          *" get secret "*) [ -f "{tmp_path}/exists" ] ;;
          *"create secret"*) for a in "$@"; do case $a in --from-file=*) f=${{a#*=}}; cp "${{f#*=}}" "{tmp_path}/${{f%%=*}}";; esac; done ;;
        esac
        """))
    kubectl.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    script = str(K8S / "create-secrets.sh")
    result = subprocess.run(["sh", script, "sales-test"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    token, password = (tmp_path / "token-secret").read_text(), (tmp_path / "admin-password").read_text()
    assert re.fullmatch(r"[A-Za-z0-9]{64}", token) and re.fullmatch(r"[A-Za-z0-9]{24}", password)
    assert "--namespace sales-test create secret generic gateway-secrets" in log.read_text()
    (tmp_path / "exists").touch()
    log.unlink()
    result = subprocess.run(["sh", script, "sales-test"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "kept" in result.stdout
    assert "create" not in log.read_text()
