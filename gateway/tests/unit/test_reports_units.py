"""Issue 8's pure pieces, without a broker: periods, joining the owners' aggregates, who decides a
composed answer's 404, the timeline's order of events, waiting for parts under one deadline, the
per-credential token bucket, the input guards, and what the OpenAPI document promises."""
from datetime import date

import eventlet
import pytest
from eventlet.event import Event
from marshmallow import ValidationError
from nameko.exceptions import RemoteError

from gateway import openapi
from gateway.api import reports
from gateway.compose import Part, gather, missing, partial_headers
from gateway.http import refuse_far_dates, refuse_nul
from gateway.ratelimit import RateLimiter, retry_after
from gateway.schemas import PageQuery
from shared.errors import NotFound, ServiceUnavailable, ValidationFailed


def part(name, service, status="ok", value=None):
    return Part(name, service, status=status, value=value)


# -- periods -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,bounds", [
    ("2026", (date(2026, 1, 1), date(2026, 12, 31))),
    ("2026-Q1", (date(2026, 1, 1), date(2026, 3, 31))),
    ("2026-Q4", (date(2026, 10, 1), date(2026, 12, 31))),
    ("2024-02", (date(2024, 2, 1), date(2024, 2, 29))),
    ("2026-11", (date(2026, 11, 1), date(2026, 11, 30))),
])
def test_a_period_is_a_year_a_quarter_or_a_month_of_business_dates(text, bounds):
    assert reports.period_bounds(text) == bounds
    assert reports.PerformanceQuery().load({"period": text})["period"] == text


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "0000", "1999", "3000-01", "26", "2026-1", "2026-q1", ""])
def test_a_period_that_is_none_of_them_is_refused_naming_the_field(text):
    with pytest.raises(ValidationError) as info:
        reports.PerformanceQuery().load({"period": text})
    assert "period" in info.value.messages


def test_report_queries_default_and_refuse_what_they_do_not_know():
    assert reports.PerformanceQuery().load({}) == {"period": None, "group_by": "rep"}
    assert reports.OsbCycleQuery().load({}) == {"period": None, "group_by": None}
    for schema, query, name in ((reports.PipelineQuery, {"group_by": "product"}, "group_by"),
                                (reports.PerformanceQuery, {"group_by": "planet"}, "group_by"),
                                (reports.OverviewQuery, {"items": "0"}, "items"),
                                (reports.OverviewQuery, {"colour": "red"}, "colour")):
        with pytest.raises(ValidationError) as info:
            schema().load(query)
        assert name in info.value.messages


# -- joining the owners' aggregates --------------------------------------------------------------------
def owners(**down):
    rows = {
        "orders": ("order", {"groups": [{"key": "r1", "orders": 2, "ordered": "500.00", "target": "1000.00"},
                                        {"key": "r2", "orders": 1, "ordered": "300.00", "target": None}]}),
        "shipped": ("inventory", {"groups": [{"key": "r1", "shipped": "400.00", "returned": "100.00"}]}),
        "billing": ("billing", {"groups": [{"key": "r1", "invoiced": "300.00", "collected": "150.00",
                                            "collection_rate": "0.5000", "receivable": "150.00", "dso": "15.0"},
                                           {"key": "r3", "invoiced": "0.00", "collected": "20.00",
                                            "collection_rate": None, "receivable": "0.00", "dso": None}],
                                "totals": {"collection_rate": "0.5667", "dso": "15.0"}}),
        "activity": ("customer", {"groups": [{"key": "r1", "name": "Wang Fang", "visits": 5,
                                              "visit_standard": "42.86", "visits_vs_standard": "11.67",
                                              "new_customers": 3},
                                             {"key": "r2", "name": "Li Lei", "visits": 0, "visit_standard": "42.86",
                                              "visits_vs_standard": "0.00", "new_customers": 0}]}),
    }
    return {name: part(name, service, status=down.get(service, "ok"), value=value if service not in down else None)
            for name, (service, value) in rows.items()}


def test_performance_joins_each_owners_figures_by_group_key():
    groups, totals, unavailable = reports.performance(owners(), "rep")
    by_key = {g["key"]: g for g in groups}
    assert [g["key"] for g in groups] == ["r1", "r2", "r3"]
    assert by_key["r1"] == {
        "key": "r1", "name": "Wang Fang", "target": "1000.00", "orders": 2, "ordered": "500.00", "completion": "50.00",
        "shipped": "400.00", "returned": "100.00", "invoiced": "300.00", "collected": "150.00",
        "collection_rate": "0.5000", "receivable": "150.00", "dso": "15.0", "visits": 5, "visit_standard": "42.86",
        "visits_vs_standard": "11.67", "new_customers": 3}
    # a group one owner has no row for gets that owner's zeros, not nulls
    assert (by_key["r2"]["shipped"], by_key["r2"]["invoiced"], by_key["r2"]["completion"]) == ("0.00", "0.00", None)
    assert (by_key["r3"]["ordered"], by_key["r3"]["visits"], by_key["r3"]["collected"]) == ("0.00", 0, "20.00")
    assert (totals["target"], totals["ordered"], totals["completion"]) == ("1000.00", "800.00", "80.00")
    assert (totals["collected"], totals["collection_rate"], totals["visits"]) == ("170.00", "0.5667", 5)
    assert (totals["visit_standard"], totals["visits_vs_standard"]) == ("85.72", "5.83")
    assert unavailable == []


def test_performance_without_billing_leaves_its_figures_null_and_says_so():
    groups, totals, unavailable = reports.performance(owners(billing="timeout"), "rep")
    assert {g["key"] for g in groups} == {"r1", "r2"}
    assert all(g["invoiced"] is None and g["collection_rate"] is None for g in groups)
    assert groups[0]["ordered"] == "500.00" and totals["invoiced"] is None and totals["ordered"] == "800.00"
    assert unavailable == [{"service": "billing", "parts": ["billing"], "reason": "timeout"}]
    assert partial_headers(unavailable) == {"Sales-Partial": "billing"}


def test_performance_by_product_has_no_visits_and_that_is_not_a_missing_part():
    parts = owners()
    del parts["activity"]
    groups, totals, unavailable = reports.performance(parts, "product")
    assert all(g["visits"] is None and g["new_customers"] is None for g in groups)
    assert totals["visits"] is None and unavailable == [] and partial_headers(unavailable) == {}


# -- who decides a composed answer ---------------------------------------------------------------------------
def test_the_owner_of_the_record_decides_404_and_otherwise_the_scoped_parts_do():
    customer = part("customer", "customer")
    reports.decide(customer, [])
    with pytest.raises(NotFound):
        reports.decide(part("customer", "customer", "not_found"), [part("orders", "order", value={"count": 3})])
    down = part("customer", "customer", "timeout")
    reports.decide(down, [part("orders", "order", value={"count": 1, "amount": "10.00", "items": [{"id": "o"}]})])
    with pytest.raises(NotFound):  # billing keeps a copy of every customer, scoped by owner
        reports.decide(down, [part("credit", "billing", "not_found"),
                              part("orders", "order", value={"count": 1, "items": [{"id": "o"}]})])
    with pytest.raises(ServiceUnavailable):  # nothing can tell whether it is there
        reports.decide(down, [part("orders", "order", value={"count": 0, "amount": "0.00", "items": []}),
                              part("credit", "billing", "unavailable")])


def test_missing_parts_are_named_per_service_and_in_one_header():
    parts = {"credit": part("credit", "billing", "timeout"), "invoices": part("invoices", "billing", "timeout"),
             "orders": part("orders", "order"), "service": part("service", "aftersales", "error"),
             "profile": part("profile", "customer", "not_found")}
    found = missing(parts)
    assert found == [{"service": "aftersales", "parts": ["service"], "reason": "error"},
                     {"service": "billing", "parts": ["credit", "invoices"], "reason": "timeout"}]
    assert partial_headers(found) == {"Sales-Partial": "aftersales, billing"}


# -- the timeline ----------------------------------------------------------------------------------------------
def test_the_timeline_puts_every_owners_events_in_time_order():
    order = {"id": "o1", "number": "SO-1", "created_at": "2026-11-02T01:00:00+00:00",
             "confirmed_at": "2026-11-02T01:00:05+00:00", "shipped_at": "2026-11-03T08:00:00+00:00",
             "cancel_reason": None}
    quote = {"id": "q1", "number": "QT-1", "approvals": [
        {"relation": "direct_manager", "status": "approved", "decided_at": "2026-11-01T09:00:00+00:00",
         "approver_name": "Manager"}]}
    parts = {
        "order": part("order", "order", value={"order": order, "quote": quote, "contract": None, "sagas": [],
                                               "returns": [], "invoices": []}),
        "warehouse": part("warehouse", "inventory", value={
            "reservations": [{"reservation_id": "r1", "created_at": "2026-11-02T01:00:03+00:00",
                              "committed_at": None, "closed_at": None, "status": "held"}],
            "deliveries": [{"id": "d1", "number": "DN-1", "created_at": "2026-11-03T07:00:00+00:00",
                            "issued_at": "2026-11-03T08:00:00+00:00", "goods_issue_id": "g1",
                            "goods_issue_number": "GI-1", "total": "200.00"}],
            "return_receipts": []}),
        "billing": part("billing", "billing", "unavailable"),
    }
    answer = reports.timeline("o1", parts)
    assert [e["type"] for e in answer["events"]] == [
        "quote.approved", "order.created", "stock.reserved", "order.confirmed", "delivery.created", "goods.issued",
        "order.shipped"]
    assert answer["goods_issues"] == [{"id": "g1", "number": "GI-1", "delivery_id": "d1", "delivery_number": "DN-1",
                                       "issued_at": "2026-11-03T08:00:00+00:00", "issued_by": None,
                                       "total": "200.00"}]
    assert answer["approvals"][0]["document"] == "quote" and answer["invoices"] is None
    assert answer["unavailable"] == [{"service": "billing", "parts": ["billing"], "reason": "unavailable"}]


# -- waiting for parts under one deadline --------------------------------------------------------------------
class Reply:
    def __init__(self, value=None, error=None, never=False):
        self.value, self.error, self.never = value, error, never

    def result(self):
        if self.never:
            Event().wait()  # never answers
        if self.error is not None:
            raise self.error
        return self.value


def test_gather_settles_every_part_and_never_waits_past_the_deadline():
    def refused():
        raise ServiceUnavailable("the billing service is not running")

    with eventlet.Timeout(5):  # the whole gather ends long before: its deadline is 0.05 s
        parts = gather({
            "ok": ("customer", lambda: Reply(value={"id": 1})),
            "slow": ("order", lambda: Reply(never=True)),
            "down": ("billing", refused),
            "gone": ("inventory", lambda: Reply(error=NotFound("no such order"))),
            "broken": ("aftersales", lambda: Reply(error=RemoteError("ZeroDivisionError", "boom"))),
        }, timeout=0.05)
    assert {name: p.status for name, p in parts.items()} == {
        "ok": "ok", "slow": "timeout", "down": "unavailable", "gone": "not_found", "broken": "error"}
    assert parts["ok"].value == {"id": 1} and parts["slow"].missing and not parts["gone"].missing


# -- the token bucket -----------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_credential_gets_its_burst_then_its_rate_and_others_are_not_touched():
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5) and retry_after(wait) == 1
    assert limiter.take("b") == 0.0  # another credential has its own bucket
    clock.now += 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    clock.now += 60  # refilled to the burst, never beyond
    assert [limiter.take("a") for _ in range(4)][-1] > 0
    assert retry_after(2.2) == 3


def test_a_zero_rate_is_no_limit_and_full_buckets_are_forgotten():
    assert RateLimiter(rate=0, burst=1).take("a") == 0.0
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock, max_credentials=2)
    for name in ("a", "b"):
        limiter.take(name)
    clock.now += 5
    limiter.take("c")
    assert set(limiter._buckets) == {"c"}
    with pytest.raises(ValueError):
        RateLimiter(rate=-1, burst=1)


# -- input guards ------------------------------------------------------------------------------------------
def test_nul_characters_and_dates_beyond_business_are_refused_naming_the_field():
    with pytest.raises(ValidationFailed) as info:
        refuse_nul({"lines": [{"sku": "A\x00"}]}, "body")
    assert info.value.errors == {"lines.0.sku": ["must not contain NUL characters"]}
    refuse_nul({"q": "fine", "n": 1, "x": None}, "query")
    with pytest.raises(ValidationFailed) as info:
        refuse_far_dates(reports.OsbCycleQuery(), {"period": None, "when": date(9999, 12, 31)})
    assert "when" in info.value.errors
    from gateway.api.sales import OrderQuery
    with pytest.raises(ValidationFailed) as info:
        refuse_far_dates(OrderQuery(), OrderQuery().load({"from": "0001-01-01"}))
    assert "from" in info.value.errors
    refuse_far_dates(OrderQuery(), OrderQuery().load({"from": "2026-01-01"}))


# -- what the OpenAPI document promises ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def document():
    from gateway.service import GatewayService

    return openapi.build(GatewayService)


def test_every_operation_documents_its_answer_and_every_credentialed_one_its_rate_limit(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            success = [status for status in operation["responses"] if status.startswith("2")]
            assert success and all("content" in operation["responses"][s] for s in success), (method, path)
            if operation.get("security") != []:
                assert operation["responses"]["429"] == {"$ref": "#/components/responses/TooManyRequests"}
            if "requestBody" in operation:
                assert operation["requestBody"]["content"]["application/json"]["example"], (method, path)
    limited = document["components"]["responses"]["TooManyRequests"]
    assert limited["headers"]["Retry-After"] == {"$ref": "#/components/headers/RetryAfter"}


def test_the_composed_answers_document_the_partial_header(document):
    for path in ("/api/v1/customers/{customer_id}/overview", "/api/v1/orders/{order_id}/timeline",
                 "/api/v1/reports/sales-performance"):
        headers = document["paths"][path]["get"]["responses"]["200"]["headers"]
        assert headers["Sales-Partial"] == {"$ref": "#/components/headers/Sales-Partial"}
    assert "additionalProperties" not in document["components"]["schemas"]["Problem"]  # answers are open
    assert document["components"]["schemas"]["CustomerCreate"]["additionalProperties"] is False  # requests closed


def test_every_list_endpoint_is_paginated():
    from gateway.service import GatewayService

    lists = []
    for _, endpoint in openapi.endpoints_of(GatewayService):
        declared = getattr(endpoint.response, "_declared_fields", {})
        if endpoint.method == "GET" and {"items", "next_cursor"} <= set(declared):
            lists.append(endpoint.url)
            # territories are a handful of markets and areas: one page, always
            if not endpoint.url.endswith("/territories"):
                assert endpoint.query is not None and issubclass(endpoint.query, PageQuery), endpoint.url
    assert len(lists) >= 25


API_MD_FILTERS = {  # ../shared/API.md "Resources": the query parameters each list and report takes
    "/api/v1/targets": {"period", "scope"},
    "/api/v1/customers": {"owner", "status", "region", "industry", "q"},
    "/api/v1/visits": {"owner", "from", "to"},
    "/api/v1/stock": {"sku", "warehouse"},
    "/api/v1/orders": {"customer_id", "status", "from", "to"},
    "/api/v1/deliveries": {"order_id"},
    "/api/v1/invoices": {"customer_id", "status"},
    "/api/v1/service-requests": {"status", "overdue"},
    "/api/v1/reports/receivables-aging": {"as_of"},
    "/api/v1/reports/sales-performance": {"period", "group_by"},
}


def test_every_filter_api_md_names_is_taken_with_limit_and_cursor_on_lists():
    from gateway.service import GatewayService

    queries = {endpoint.url: endpoint.query for _, endpoint in openapi.endpoints_of(GatewayService)
               if endpoint.method == "GET"}
    for url, names in API_MD_FILTERS.items():
        taken = {f.data_key or n for n, f in queries[url]().fields.items()}
        assert names <= taken, (url, names - taken)
        if not url.startswith("/api/v1/reports/"):
            assert {"limit", "cursor"} <= taken, url
