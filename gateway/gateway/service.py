"""The gateway's entrypoints: HTTP in, RPC out. Each method only says what to call; the pipeline
(gateway.http) has already authenticated, authorized, validated and applied Idempotency-Key,
and errors become problem answers there too."""
import json

from nameko.timer import timer

from gateway import accounts, auth, openapi
from gateway.auth import ADMIN, CUSTOMER_READERS, CUSTOMER_WRITERS, EVERYONE
from gateway.db import IdempotencyRecords
from gateway.dependencies import Security
from gateway.exceptions import RouteNotFound
from gateway.http import Reply, api, created, plain
from gateway.schemas import (
    ApiKeyCreate, ApiKeyCreated, ApiKeyPage, CreditAccountOut, CustomerCreate, CustomerOut, CustomerPage,
    CustomerQuery, MeOut, PageQuery, TokenOut, TokenRequest, UserCreate, UserOut, UserPage,
)
from shared.dependencies import Database
from shared.rpc import ServiceRpc
from shared.service import ServiceBase

API = "/api/v1"
FILTERS = ("owner", "status", "region", "industry", "q")


class GatewayService(ServiceBase):
    name = "gateway"

    db = Database(relay=False)
    security = Security()
    customer = ServiceRpc("customer")
    billing = ServiceRpc("billing")

    def readiness_checks(self):
        return dict(super().readiness_checks(), admin_bootstrap=self.security.check_ready)

    # -- auth ---------------------------------------------------------------------------------
    @api("POST", f"{API}/auth/token", body=TokenRequest, response=TokenOut, tags=["auth"], errors=(401,))
    def issue_token(self, call):
        """Log in: a bearer token for a username and password."""
        return auth.login(self.db, self.security, call.body["username"], call.body["password"])

    @api("GET", f"{API}/me", roles=EVERYONE, response=MeOut, tags=["auth"])
    def me(self, call):
        """Who the credential belongs to."""
        return accounts.me(call.principal)

    # -- users and API keys -------------------------------------------------------------------
    @api("POST", f"{API}/users", roles=ADMIN, body=UserCreate, response=UserOut, status=201, tags=["users"],
         errors=(503, 504))
    def create_user(self, call):
        """Create a user: a staff member in the org chart and their login."""
        return Reply(accounts.create_user(self.db, self.customer, call, plain(call.body)), status=201)

    @api("GET", f"{API}/users", roles=ADMIN, query=PageQuery, response=UserPage, tags=["users"])
    def list_users(self, call):
        """List the users (logins)."""
        return accounts.list_credentials(self.db, "password", call.query, accounts.user_out)

    @api("POST", f"{API}/api-keys", roles=ADMIN, body=ApiKeyCreate, response=ApiKeyCreated, status=201,
         tags=["users"], errors=(503, 504), secret_fields=("key",))
    def create_api_key(self, call):
        """Create an API key for an integration; the key is shown in this answer only."""
        return Reply(accounts.create_api_key(self.db, self.customer, call, call.body), status=201)

    @api("GET", f"{API}/api-keys", roles=ADMIN, query=PageQuery, response=ApiKeyPage, tags=["users"])
    def list_api_keys(self, call):
        """List the API keys (never the keys themselves)."""
        return accounts.list_credentials(self.db, "api_key", call.query, accounts.api_key_out)

    # -- customers ----------------------------------------------------------------------------
    @api("POST", f"{API}/customers", roles=CUSTOMER_WRITERS, body=CustomerCreate, response=CustomerOut,
         status=201, locates=True, tags=["customers"], errors=(409, 503, 504))
    def create_customer(self, call):
        """Record a customer (FR-01, FR-02); a duplicate name or tax id answers 409 DUPLICATE_CUSTOMER
        naming the owner (FR-06, FR-07)."""
        customer = self.customer.create_customer(request_id=call.request_id, actor=call.actor,
                                                 customer=plain(call.body))
        return created(customer, location=f"{API}/customers/{customer['id']}")

    @api("GET", f"{API}/customers", roles=CUSTOMER_READERS, query=CustomerQuery, response=CustomerPage,
         tags=["customers"], errors=(503, 504))
    def list_customers(self, call):
        """List the customers the caller may see, filtered."""
        query = plain(call.query)
        filters = {name: query[name] for name in FILTERS if query.get(name) is not None}
        return self.customer.list_customers(actor=call.actor, filters=filters, limit=query["limit"],
                                            cursor=query["cursor"])

    @api("GET", f"{API}/customers/<uuid:customer_id>", roles=CUSTOMER_READERS, response=CustomerOut,
         tags=["customers"], errors=(404, 503, 504))
    def get_customer(self, call, customer_id):
        """One customer (someone else's answers 404)."""
        return self.customer.get_customer(actor=call.actor, customer_id=customer_id)

    @api("GET", f"{API}/customers/<uuid:customer_id>/credit", roles=CUSTOMER_READERS,
         response=CreditAccountOut, tags=["customers", "billing"], errors=(404, 503, 504))
    def get_customer_credit(self, call, customer_id):
        """The customer's credit account: limit, grade, exposure, available, history."""
        return self.billing.get_credit_account(actor=call.actor, customer_id=customer_id)

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

    @api("GET,POST,PUT,PATCH,DELETE", f"{API}/<path:rest>", in_schema=False, fallback=True)
    def not_found(self, call, rest):
        """Answered by the entrypoint itself: 404, or 405 for a known path."""

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
