"""Prometheus: the compose scrape config and the rules, checked and unit-tested by promtool, and
the names they use tied to the metrics the kit defines."""
import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase

from shared import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
PROCESSES = {"gateway": 8000, "customer": 8101, "order": 8102, "inventory": 8103, "billing": 8104,
             "aftersales": 8105}


def exported_series_names():
    """Every series name the kit's collectors can export."""
    names = set()
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        name = collector._name
        if collector._type == "counter":
            names |= {f"{name}_total", f"{name}_created"}
        elif collector._type == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
        else:
            names.add(name)
    return names


def sales_names_in(expr):
    """The raw `sales_*` series an expression reads (recording-rule names have colons)."""
    return {token for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)
            if token.startswith("sales_") and ":" not in token}


def rules():
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def run(*args):
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_rules_pass_promtool_check(promtool):
    assert RULE_FILES
    run(promtool, "check", "rules", *map(str, RULE_FILES))


def test_rules_pass_their_unit_tests(promtool):
    assert TEST_FILES
    out = run(promtool, "test", "rules", *map(str, TEST_FILES))
    # Debian's promtool 2.42 exits 0 even when a test fails: read what it says too.
    assert "FAILED" not in out and out.count("SUCCESS") == len(TEST_FILES), out


def test_compose_prometheus_config_is_valid(promtool):
    out = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert f"{len(RULE_FILES)} rule files found" in out


def test_every_alert_has_a_unit_test_severity_and_text():
    tested = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 15
    for rule in alerts:
        assert rule["alert"] in tested, f"{rule['alert']} has no promtool test where it fires"
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_rules_read_only_metrics_the_kit_exports():
    exported = exported_series_names()
    for rule in rules():
        unknown = sales_names_in(rule["expr"]) - exported
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}, not in shared/metrics.py"


def test_rules_cover_what_sres_watch():
    text = " ".join(rule["expr"] for rule in rules())
    for needle in ("sales_entrypoint_requests_total", "sales_entrypoint_duration_seconds_bucket",
                   "sales_outbox_backlog", "sales_outbox_oldest_age_seconds", "sales_failed_messages_total",
                   "sales_saga_oldest_age_seconds", "sales_credit_hold", "rabbitmq_detailed_queue_messages_ready"):
        assert needle in text


def test_compose_scrapes_every_process_and_rabbitmq():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, port in PROCESSES.items():
        assert jobs[name]["dns_sd_configs"] == [{"names": [name], "type": "A", "port": port}]
        assert "relabel_configs" not in jobs[name], "the processes set `service` themselves"
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert jobs["rabbitmq-queues"]["metrics_path"] == "/metrics/detailed"


def test_prometheusrule_wraps_the_same_groups():
    import importlib.util

    spec = importlib.util.spec_from_file_location("prometheusrule", PROMETHEUS / "prometheusrule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    manifest = module.prometheus_rule("sales", {"release": "kube-prometheus-stack"})
    assert manifest["kind"] == "PrometheusRule" and manifest["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    groups = [g for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]]
    assert manifest["spec"]["groups"] == groups
