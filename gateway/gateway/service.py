"""The gateway: HTTP in, RPC out. The endpoints live in gateway/api/, one mixin per area of
API.md; each method only says what to call. The pipeline (gateway.http) has already
authenticated, authorized, validated and applied Idempotency-Key, and errors become problem
answers there too."""
import json

from nameko.timer import timer

from gateway import accounts, console, openapi
from gateway.api.accounts import AccountsApi
from gateway.api.approvals import ApprovalsApi
from gateway.api.aftersales import AftersalesApi
from gateway.api.billing import BillingApi
from gateway.api.catalog import CatalogApi
from gateway.api.customers import CustomersApi
from gateway.api.reports import ReportsApi
from gateway.api.sales import SalesApi
from gateway.db import IdempotencyRecords
from gateway.dependencies import Security
from gateway.exceptions import RouteNotFound
from gateway.http import Reply, api
from shared.dependencies import Database
from shared.entrypoints import event_handler
from shared.rpc import ServiceRpc
from shared.service import ServiceBase

API = "/api/v1"


class GatewayService(AccountsApi, CustomersApi, CatalogApi, SalesApi, BillingApi, AftersalesApi, ReportsApi,
                     ApprovalsApi, ServiceBase):
    name = "gateway"

    db = Database(relay=False)
    security = Security()
    customer = ServiceRpc("customer")
    order = ServiceRpc("order")
    inventory = ServiceRpc("inventory")
    billing = ServiceRpc("billing")
    aftersales = ServiceRpc("aftersales")

    def readiness_checks(self):
        return dict(super().readiness_checks(), admin_bootstrap=self.security.check_ready)

    # -- the API's own description --------------------------------------------------------------
    @api("GET", f"{API}/openapi.json", tags=["meta"], in_schema=False)
    def openapi_document(self, call):
        """The OpenAPI 3 document of this API."""
        return self._openapi()

    @api("GET", "/docs", in_schema=False, content_type="text/html; charset=utf-8")
    def docs(self, call):
        return Reply(openapi.DOCS_HTML, content_type="text/html; charset=utf-8",
                     headers={"Content-Security-Policy": openapi.DOCS_CSP})

    @api("GET", "/docs/<asset>", in_schema=False)
    def docs_asset(self, call, asset):
        found = openapi.docs_asset(asset)
        if found is None:
            raise RouteNotFound(f"no such file: /docs/{asset}")
        data, content_type = found
        return Reply(data, content_type=content_type, headers={"Cache-Control": "public, max-age=3600"})

    # -- the sales console (issue 12): static files; everything it shows comes from /api/v1 --------
    @api("GET", "/console", in_schema=False, content_type="text/html; charset=utf-8")
    def console_page(self, call):
        return self._console_file("static", "index.html", cache="no-cache")

    @api("GET", "/console/<name>", in_schema=False)
    def console_file(self, call, name):
        return self._console_file("static", name)

    @api("GET", "/console/vendor/<name>", in_schema=False)
    def console_vendor(self, call, name):
        return self._console_file("vendor", name, cache="public, max-age=86400")

    def _console_file(self, folder, name, cache="no-cache"):
        found = console.asset(folder, name)
        if found is None:
            raise RouteNotFound(f"no such file in the console: {name}")
        data, content_type = found
        return Reply(data, content_type=content_type, headers={
            "Cache-Control": cache, "Content-Security-Policy": console.CSP, "X-Content-Type-Options": "nosniff"})

    @api("GET,POST,PUT,PATCH,DELETE", f"{API}/<path:rest>", in_schema=False, fallback=True)
    def not_found(self, call, rest):
        """Answered by the entrypoint itself: 404, or 405 for a known path."""

    # -- the org chart -----------------------------------------------------------------------------
    @event_handler("customer", "staff.updated", expects=accounts.StaffUpdatedData)
    def on_staff_updated(self, uow, event):
        """A login follows its staff member: role, team, display name, active (newest version wins)."""
        accounts.follow_staff(uow, event["data"])

    # -- housekeeping ---------------------------------------------------------------------------
    @timer(interval=3600)
    def purge_idempotency_records(self):
        """Drop answers older than their 24 h (safe in every replica: SKIP LOCKED batches)."""
        while True:
            with self.db.transaction() as uow:
                if IdempotencyRecords(uow).purge_expired() == 0:
                    return

    _openapi_cache = None

    def _openapi(self):
        cls = type(self)
        if cls._openapi_cache is None:
            cls._openapi_cache = json.dumps(openapi.build(cls))
        return Reply(cls._openapi_cache, content_type="application/json")
