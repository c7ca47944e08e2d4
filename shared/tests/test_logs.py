"""The kit's JSON log line (shared.logs), built by one json.dumps, and its cached metric children."""
import json
import logging
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from pythonjsonlogger.json import JsonFormatter as Reference

from shared import context
from shared.logs import JsonFormatter


def record(msg="rpc place_order", args=None, exc_info=None, **extra):
    rec = logging.LogRecord("shared.dependencies", logging.INFO, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def reference():
    return Reference(fmt="%(asctime)s %(levelname)s %(name)s %(message)s",
                     rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


def test_a_line_has_the_fields_python_json_logger_gave_it(monkeypatch):
    monkeypatch.setattr(context, "SERVICE", "order")
    context.set_correlation_id("cid-1")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys
            failed = sys.exc_info()
        for rec in (record(entrypoint="rpc", method="place_order", outcome="success", duration_ms=12.5),
                    record("answered %s %s", (503, "DB_UNAVAILABLE")),
                    record(exc_info=failed, handler="order.on_goods_issued"),
                    record(correlation_id="given", at=datetime(2026, 1, 2, tzinfo=timezone.utc))):
            mine, theirs = json.loads(JsonFormatter().format(rec)), json.loads(reference().format(rec))
            theirs.setdefault("service", "order")
            theirs.setdefault("correlation_id", "cid-1")
            assert list(mine) == list(theirs) and mine == theirs
    finally:
        context.set_correlation_id(None)


def test_values_json_cannot_hold_are_written_as_text():
    line = json.loads(JsonFormatter().format(record(amount=Decimal("1.10"), id=uuid.UUID(int=1))))
    assert line["amount"] == "1.10" and line["id"] == str(uuid.UUID(int=1))


def test_a_metric_child_is_looked_up_once_and_counts_where_labels_would():
    from prometheus_client import REGISTRY

    from shared import metrics

    first = metrics.child(metrics.OUTBOX_PUBLISHED, "logs-test")
    assert metrics.child(metrics.OUTBOX_PUBLISHED, "logs-test") is first
    assert first is metrics.OUTBOX_PUBLISHED.labels("logs-test")
    first.inc(2)
    assert REGISTRY.get_sample_value("sales_outbox_published_total", {"service": "logs-test"}) == 2
