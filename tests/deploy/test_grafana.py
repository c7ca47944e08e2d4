"""The Grafana dashboard: well-formed, every query valid PromQL (parsed by promtool) over series
the kit exports or the rules record, and the panels SREs and the business expect."""
import itertools
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from shared import metrics  # noqa: F401  (the collectors the names are checked against)

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sales-platform.json"
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))

# Grafana's own variables, replaced by something promtool accepts.
SUBSTITUTIONS = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m",
                 "$service": ".*", "$type": ".*", "${service}": ".*", "${type}": ".*"}


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard):
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def concrete(expr):
    for variable, value in sorted(SUBSTITUTIONS.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def recorded_names():
    return {rule["record"] for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "record" in rule}


def kit_series():
    from prometheus_client.metrics import MetricWrapperBase

    names = set()
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(collector._type, ("",))
            names |= {collector._name + suffix for suffix in suffixes}
    return names


def test_dashboard_identity_and_variables(dashboard):
    assert dashboard["uid"] == "sales-platform" and dashboard["title"] == "Sales Platform"
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("service", "type"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
        assert "sales_entrypoint_requests_total" in variables[name]["query"]


def test_panels_are_well_formed_and_do_not_overlap(dashboard):
    all_panels = list(panels(dashboard))
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    boxes = []
    for panel in all_panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        boxes.append((panel["title"], grid))
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"].strip()
    for (a, ga), (b, gb) in itertools.combinations(boxes, 2):
        overlap_x = ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
        overlap_y = ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]
        assert not (overlap_x and overlap_y), f"panels {a!r} and {b!r} overlap"


def test_every_query_is_valid_promql(dashboard, promtool, tmp_path):
    rules = [{"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": concrete(target["expr"])}
             for panel, target in queries(dashboard)]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_read_only_known_series(dashboard):
    known = kit_series() | recorded_names()
    for panel, target in queries(dashboard):
        for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", target["expr"]):
            if token.startswith("sales_") or ":" in token:
                assert token in known, f"{panel['title']!r} reads {token}: neither in shared/metrics.py nor recorded"


def test_dashboard_shows_red_outbox_sagas_and_the_business(dashboard):
    text = "\n".join(target["expr"] for _, target in queries(dashboard))
    for needle in (
        "service:sales_entrypoint_requests:rate5m", "service:sales_entrypoint_error_ratio:rate5m",
        "sales_entrypoint_duration_seconds_bucket", "service_type_method:sales_entrypoint_duration_seconds:p99_5m",
        "sales_outbox_backlog", "sales_outbox_oldest_age_seconds", "sales_failed_messages_total",
        "sales_sagas_in_progress", "sales_saga_oldest_age_seconds", "sales_credit_holds_waiting",
        'sales_orders_total{outcome="confirmed"}', 'sales_orders_total{outcome="credit_hold"}',
        "sales_invoices_issued_total", "sales_invoiced_amount_total", "sales_receipts_total",
        "sales_receipts_amount_total", "sales_stockouts_total", "sales_service_requests_overdue",
        "rabbitmq_detailed_queue_messages",
    ):
        assert needle in text, f"no panel shows {needle}"


def test_provisioning_points_at_prometheus_and_the_dashboard_folder():
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())["datasources"]
    assert [(d["type"], d["url"], d["isDefault"]) for d in datasources] == [("prometheus", "http://prometheus:9090", True)]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/sales-platform.yaml").read_text())["providers"]
    assert providers[0]["type"] == "file"
    assert providers[0]["options"]["path"] == "/etc/grafana/dashboards/sales-platform"
