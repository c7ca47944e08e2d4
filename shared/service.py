"""The base every service class extends: instrumentation and `/health`, `/ready`, `/metrics`
on the service's own port (WEB_SERVER_ADDRESS)."""
import json

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from shared import config, versions
from shared.dependencies import Instrumentation
from shared.web import http


def json_response(status, body):
    return Response(json.dumps(body), status=status, mimetype="application/json")


def broker_reachable(timeout=2.0):
    from kombu import Connection

    try:
        with Connection(config.get("AMQP_URI"), connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True, None
    except Exception as exc:  # any failure means not ready
        return False, f"{type(exc).__name__}: {exc}"


class ServiceBase:
    instrumentation = Instrumentation()

    def readiness_checks(self):
        """name -> callable raising on failure; a service with a database adds its ping."""
        checks = {"broker": _broker_check}
        database = getattr(self, "db", None)
        if database is not None:
            checks["database"] = database.ping
        return checks

    @http("GET", "/health")
    def health(self, request):
        return json_response(200, {"status": "ok", "service": self.name,
                                   "version": versions.service_version(type(self)),
                                   "kit_version": versions.KIT_VERSION})

    @http("GET", "/ready")
    def ready(self, request):
        results = {}
        for name, check in self.readiness_checks().items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # report, do not raise
                results[name] = f"{type(exc).__name__}: {exc}"
        ok = all(value == "ok" for value in results.values())
        return json_response(200 if ok else 503, {"status": "ready" if ok else "not ready",
                                                  "service": self.name, "checks": results})

    @http("GET", "/metrics")
    def metrics(self, request):
        return Response(generate_latest(), status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _broker_check():
    ok, error = broker_reachable()
    if not ok:
        raise ConnectionError(error)
