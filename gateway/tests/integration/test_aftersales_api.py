"""API.md "After-sales" and `GET /reports/service-sla` over real HTTP, PostgreSQL and RabbitMQ, with
a fake `aftersales` service: schemas (unknown fields, a rating of 6), role sets, the RPC each
endpoint calls with the caller as actor, filters and paging, problems from the service's errors.
The service's own rules are proven in services/aftersales/tests and tests/e2e."""
import uuid

import pytest

from shared.entrypoints import rpc
from shared.errors import BusinessRuleViolation, Conflict, Forbidden, NotFound

REQUESTS = "api/v1/service-requests"


class Calls:
    def __init__(self):
        self.calls = []
        self.fail = None  # an error the fake raises instead of answering

    def of(self, method):
        return [call for call in self.calls if call["method"] == method]


CALLS = Calls()


def _answer(service_request_id=None, **fields):
    return dict({"id": service_request_id or str(uuid.uuid4()), "number": "SR-2026-000001", "status": "open"},
                **fields)


class FakeAftersales:
    name = "aftersales"

    def _record(self, method, **kwargs):
        CALLS.calls.append(dict(kwargs, method=method))
        if CALLS.fail is not None:
            raise CALLS.fail

    @rpc
    def open_request(self, *, request_id, actor, service_request):
        self._record("open_request", request_id=request_id, actor=actor, service_request=service_request)
        return _answer(customer_id=service_request["customer_id"])

    @rpc
    def confirm_request(self, *, request_id, actor, service_request_id, note=None):
        self._record("confirm_request", request_id=request_id, actor=actor, service_request_id=service_request_id,
                     note=note)
        return _answer(service_request_id, status="confirmed")

    @rpc
    def assign_request(self, *, request_id, actor, service_request_id, engineer_id, note=None):
        self._record("assign_request", request_id=request_id, actor=actor, service_request_id=service_request_id,
                     engineer_id=engineer_id, note=note)
        return _answer(service_request_id, status="assigned", engineer_id=engineer_id)

    @rpc
    def start_work(self, *, request_id, actor, service_request_id, note=None):
        self._record("start_work", request_id=request_id, actor=actor, service_request_id=service_request_id)
        return _answer(service_request_id, status="in_progress")

    @rpc
    def record_repair_step(self, *, request_id, actor, service_request_id, step, note=None, amount=None):
        self._record("record_repair_step", request_id=request_id, actor=actor,
                     service_request_id=service_request_id, step=step, note=note, amount=amount)
        return _answer(service_request_id, status="in_progress")

    @rpc
    def resolve_request(self, *, request_id, actor, service_request_id, resolution, action, quantity=None):
        self._record("resolve_request", request_id=request_id, actor=actor, service_request_id=service_request_id,
                     resolution=resolution, action=action, quantity=quantity)
        return _answer(service_request_id, status="resolved", action=action)

    @rpc
    def record_feedback(self, *, request_id, actor, service_request_id, rating, comment=None):
        self._record("record_feedback", request_id=request_id, actor=actor, service_request_id=service_request_id,
                     rating=rating, comment=comment)
        return _answer(service_request_id, status="closed", rating=rating)

    @rpc
    def get_request(self, *, actor, service_request_id):
        self._record("get_request", actor=actor, service_request_id=service_request_id)
        return _answer(service_request_id, history=[])

    @rpc
    def list_requests(self, *, actor, filters=None, limit=None, cursor=None):
        self._record("list_requests", actor=actor, filters=filters, limit=limit, cursor=cursor)
        return {"items": [_answer()], "next_cursor": None}

    @rpc
    def report_service(self, *, actor, period_start, period_end, group_by):
        self._record("report_service", actor=actor, period_start=period_start, period_end=period_end,
                     group_by=group_by)
        return {"period_start": period_start, "period_end": period_end, "group_by": group_by, "groups": []}


@pytest.fixture
def aftersales(start_gateway, container_factory):
    CALLS.__init__()
    session = start_gateway(customer=False)
    container_factory(FakeAftersales, session.config).start()
    return session


def new_request(**over):
    body = {"customer_id": str(uuid.uuid4()), "sku": "PUMP-100", "delivery_id": str(uuid.uuid4()),
            "type": "repair", "priority": "high", "description": "stops after ten minutes"}
    body.update(over)
    return body


def path(*parts):
    return "/".join((REQUESTS,) + parts)


def test_api_service_requests_open_calls_the_service_as_the_caller_once_per_idempotency_key(aftersales, token_for):
    headers = dict(token_for("sales_rep", aftersales), **{"Idempotency-Key": str(uuid.uuid4())})
    body = new_request()
    first = aftersales.post(REQUESTS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.headers["Location"] == f"/api/v1/service-requests/{first.json()['id']}"
    again = aftersales.post(REQUESTS, json=body, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    [call] = CALLS.of("open_request")
    assert call["service_request"] == body and call["actor"]["role"] == "sales_rep"
    assert uuid.UUID(call["request_id"])


STEPS = [  # (role, method, path after the id, body)
    ("sales_manager", "post", ("confirm",), {"note": "checked with the customer"}),
    ("sales_manager", "post", ("assign",), {"engineer": str(uuid.uuid4())}),
    ("service_engineer", "post", ("assign",), {"engineer": str(uuid.uuid4())}),
    ("service_engineer", "post", ("start",), {}),
    ("service_engineer", "post", ("repair-steps",), {"step": "quote", "amount": "850.00"}),
    ("sales_rep", "post", ("repair-steps",), {"step": "approve"}),
    ("service_engineer", "post", ("resolve",), {"resolution": "returned", "action": "return", "quantity": 2}),
    ("sales_rep", "post", ("feedback",), {"rating": 5, "comment": "great"}),
    ("service_engineer", "get", (), None),
    ("product_manager", "get", (), None),
]


def test_api_service_requests_each_step_reaches_its_rpc_as_the_caller(aftersales, token_for):
    tokens = {}
    for role, method, url, body in STEPS:
        CALLS.calls.clear()
        service_request_id = str(uuid.uuid4())
        headers = tokens.setdefault(role, token_for(role, aftersales))
        kwargs = {"json": body} if body is not None else {}
        answer = getattr(aftersales, method)(path(service_request_id, *url), headers=headers, **kwargs)
        assert answer.status_code == 200, (role, url, answer.text)
        [call] = CALLS.calls
        assert call["service_request_id"] == service_request_id and call["actor"]["role"] == role
        if url == ("assign",):
            assert call["engineer_id"] == body["engineer"]
        if url == ("repair-steps",):
            assert (call["step"], call["amount"]) == (body["step"], body.get("amount"))
        if url == ("resolve",):
            assert (call["action"], call["quantity"]) == ("return", 2)
        if url == ("feedback",):
            assert (call["rating"], call["comment"]) == (5, "great")


REFUSED_ROLES = [  # (role, path after the id (None: open a request), body (None: a GET))
    ("sales_rep", ("confirm",), {}),                       # FR-102: the sales manager confirms
    ("sales_director", ("confirm",), {}),
    ("sales_rep", ("assign",), {"engineer": str(uuid.uuid4())}),
    ("sales_manager", ("resolve",), {"resolution": "x", "action": "advice"}),  # the engineer resolves
    ("service_engineer", ("feedback",), {"rating": 5}),   # the engineer does not rate their own work
    ("warehouse", (), None),
    ("service_engineer", None, new_request()),            # engineers do not open requests
]


def test_api_service_requests_wrong_role_is_403_and_calls_nothing(aftersales, token_for):
    for role, url, body in REFUSED_ROLES:
        headers = token_for(role, aftersales)
        if url is None:
            answer = aftersales.post(REQUESTS, json=body, headers=headers)
        elif body is None:
            answer = aftersales.get(path(*url), headers=headers)
        else:
            answer = aftersales.post(path(str(uuid.uuid4()), *url), json=body, headers=headers)
        assert answer.status_code == 403, (role, url, answer.text)
    assert aftersales.get(REQUESTS).status_code == 401
    assert CALLS.calls == []


BAD_INPUT = [  # (path after the id (None: open a request), body, the field named)
    (None, new_request(colour="red"), "colour"),
    (None, new_request(type="warranty"), "type"),
    (None, new_request(delivery_id=None), "delivery_id"),   # a repair names its delivery
    (None, new_request(priority=None), "priority"),
    (("feedback",), {"rating": 6}, "rating"),
    (("feedback",), {"rating": "5"}, "rating"),
    (("feedback",), {"rating": 4, "stars": 4}, "stars"),
    (("resolve",), {"resolution": "done", "action": "advice", "quantity": 1}, "quantity"),
    (("resolve",), {"resolution": "", "action": "advice"}, "resolution"),
    (("repair-steps",), {"step": "quote"}, "amount"),
    (("repair-steps",), {"step": "diagnose"}, "note"),
    (("assign",), {"engineer": "bob"}, "engineer"),
]


def test_api_service_requests_bad_input_is_422_naming_the_field_before_any_rpc(aftersales, token_for):
    roles = {None: "sales_rep", ("feedback",): "sales_rep", ("resolve",): "service_engineer",
             ("repair-steps",): "service_engineer", ("assign",): "sales_manager"}
    tokens = {role: token_for(role, aftersales) for role in set(roles.values())}
    for url, body, field in BAD_INPUT:
        target = REQUESTS if url is None else path(str(uuid.uuid4()), *url)
        answer = aftersales.post(target, json=body, headers=tokens[roles[url]])
        assert answer.status_code == 422, (url, body, answer.text)
        assert answer.json()["code"] == "VALIDATION_FAILED" and field in answer.json()["errors"], (url, body)
    assert CALLS.calls == []


def test_api_service_requests_list_passes_filters_and_paging(aftersales, token_for):
    headers = token_for("sales_manager", aftersales)
    customer = str(uuid.uuid4())
    answer = aftersales.get(f"{REQUESTS}?status=open&overdue=true&customer_id={customer}&limit=10&cursor=abc",
                            headers=headers)
    assert answer.status_code == 200 and answer.json()["next_cursor"] is None
    [call] = CALLS.of("list_requests")
    assert call["filters"] == {"status": "open", "overdue": True, "customer_id": customer}
    assert (call["limit"], call["cursor"]) == (10, "abc")
    for bad, field in (("overdue=perhaps", "overdue"), ("status=lost", "status"), ("limit=500", "limit"),
                       ("colour=red", "colour")):
        refused = aftersales.get(f"{REQUESTS}?{bad}", headers=headers)
        assert refused.status_code == 422 and field in refused.json()["errors"], bad
    assert len(CALLS.calls) == 1


@pytest.mark.parametrize("error,status,code", [
    (Forbidden("only the engineer the request is assigned to may resolve it", code="ENGINEER_NOT_ASSIGNED"), 403,
     "ENGINEER_NOT_ASSIGNED"),
    (BusinessRuleViolation("PUMP-100 was never delivered to this customer", code="PRODUCT_NOT_DELIVERED",
                           errors={"sku": ["this product was never delivered to this customer"]}), 409,
     "PRODUCT_NOT_DELIVERED"),
    (Conflict("cannot feedback a request that is open", code="INVALID_STATE", current_status="open"), 409,
     "INVALID_STATE"),
    (NotFound("service request not found"), 404, "NOT_FOUND"),
])
def test_api_service_requests_refusals_of_the_service_become_problems(aftersales, token_for, error, status, code):
    CALLS.fail = error
    answer = aftersales.post(REQUESTS, json=new_request(), headers=token_for("sales_rep", aftersales))
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == code and problem["detail"] == error.detail
    if error.errors:
        assert problem["errors"] == error.errors
    if code == "INVALID_STATE":
        assert problem["current_status"] == "open"


@pytest.mark.parametrize("query,expected", [
    ("period=2026-Q4&group_by=engineer", ("2026-10-01", "2026-12-31", "engineer")),
    ("period=2024-02", ("2024-02-01", "2024-02-29", "rep")),
    ("period=2026", ("2026-01-01", "2026-12-31", "rep")),
    ("from=2026-11-03&to=2026-11-09&group_by=product", ("2026-11-03", "2026-11-09", "product")),
])
def test_api_reports_service_sla_asks_the_service_for_the_period(aftersales, token_for, query, expected):
    answer = aftersales.get(f"api/v1/reports/service-sla?{query}", headers=token_for("sales_director", aftersales))
    assert answer.status_code == 200, answer.text
    [call] = CALLS.of("report_service")
    assert (call["period_start"], call["period_end"], call["group_by"]) == expected
    assert answer.json()["groups"] == []


def test_api_reports_service_sla_refuses_bad_periods_and_other_roles(aftersales, token_for):
    headers = token_for("sales_manager", aftersales)
    assert aftersales.get("api/v1/reports/service-sla", headers=headers).status_code == 200  # this month
    for bad, field in (("period=2026-13", "period"), ("period=2026-Q5", "period"), ("group_by=colour", "group_by"),
                       ("from=2026-11-03", "to"), ("period=2026&from=2026-01-01&to=2026-01-02", "period"),
                       ("from=2026-11-09&to=2026-11-03", "to")):
        answer = aftersales.get(f"api/v1/reports/service-sla?{bad}", headers=headers)
        assert answer.status_code == 422 and field in answer.json()["errors"], bad
    assert aftersales.get("api/v1/reports/service-sla", headers=token_for("warehouse", aftersales)).status_code == 403
    assert len(CALLS.of("report_service")) == 1


def test_api_openapi_documents_the_after_sales_endpoints(aftersales):
    document = aftersales.get("api/v1/openapi.json").json()
    paths = document["paths"]
    for url, method in (("/api/v1/service-requests", "post"), ("/api/v1/service-requests", "get"),
                        ("/api/v1/service-requests/{service_request_id}", "get"),
                        ("/api/v1/service-requests/{service_request_id}/confirm", "post"),
                        ("/api/v1/service-requests/{service_request_id}/assign", "post"),
                        ("/api/v1/service-requests/{service_request_id}/start", "post"),
                        ("/api/v1/service-requests/{service_request_id}/repair-steps", "post"),
                        ("/api/v1/service-requests/{service_request_id}/resolve", "post"),
                        ("/api/v1/service-requests/{service_request_id}/feedback", "post"),
                        ("/api/v1/reports/service-sla", "get")):
        assert method in paths[url], (url, method)
    assert paths["/api/v1/service-requests/{service_request_id}/confirm"]["post"]["x-roles"] == ["sales_manager"]
    assert document["components"]["schemas"]["FeedbackIn"]["properties"]["rating"]["maximum"] == 5
