"""JSON log lines carrying the service and the correlation id.

Used from each service's config.yaml:
    LOGGING: {version: 1, formatters: {json: {(): shared.logs.JsonFormatter}}, ...}
"""
import logging

from pythonjsonlogger.json import JsonFormatter as _Base

from shared import context


class JsonFormatter(_Base):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__(*args, **kwargs)

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        log_record.setdefault("service", context.SERVICE)
        cid = context.get_correlation_id()
        if cid and "correlation_id" not in log_record:
            log_record["correlation_id"] = cid


def configure(level="INFO"):
    """For scripts and tests that do not go through `nameko run`'s LOGGING."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
