"""Issue 9, security: object-level access (API.md "Row-level access"). Rep A's customer and its
documents — orders, delivery notes, invoices, receipts, quotes, returns, loans, service requests,
visits, opportunities — are out of reach of rep B (same team, another owner) and of the manager of
another team: reading or changing one answers exactly what an id nobody has answers (404, same
body but the id), nothing changes, and no list, filter, count or report lets them learn it exists.

One platform for the module; rep A's business is made once (tests/e2e/osb.py Org and
tests/e2e/reports_data.py helpers), everything after that only reads or is refused.
"""
import json
import re
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from tests.e2e.conftest import start_module_platform  # noqa: F401  (the module's platform)
from tests.e2e.osb import Org
from tests.e2e.reports_data import collected, invoiced, logged_visit
from tests.security.leaks import secrets_in_logs

pytestmark = pytest.mark.slow

API = "/api/v1"
MONTH = datetime.now(timezone.utc).strftime("%Y-%m")
LAST_MONTH = (date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


class World:
    """Rep A's business, and the people who must not see it."""

    def __init__(self, platform):
        self.platform = platform
        org = self.org = Org(platform, stock=100)
        self.a = org.rep
        customer_id = org.customer["id"]
        manager_id = org.manager.get("me", expect=200)["staff_id"]
        head_id = org.head.get("me", expect=200)["staff_id"]
        self.b, _ = platform.user(f"repb-{org.suffix}", "sales_rep", manager=manager_id, team="east-1",
                                  region="East China")
        self.other_manager, _ = platform.user(f"mgr2-{org.suffix}", "sales_manager", manager=head_id,
                                              team="east-2", region="East China")
        self.a.post(f"customers/{customer_id}/contacts", {"name": "Li Wei", "position": "purchasing head"}, expect=201)
        order, delivery = org.delivered(3)
        invoice = invoiced(org, delivery)
        receipt = collected(org, invoice, "100.00", f"TT-{org.suffix}")
        visit = logged_visit(self.a, org.manager, customer_id)
        confirmed = self.a.post("orders", org.order_body(2), expect=201)
        assert self.a.post(f"orders/{confirmed['id']}/confirm", expect=200)["status"] == "confirmed"
        draft = self.a.post("orders", org.order_body(1), expect=201)
        opportunity = self.a.post("opportunities", {"customer_id": customer_id, "title": "second line",
                                                    "expected_amount": "5000.00", "probability": 40}, expect=201)
        quote = self.a.post("quotes", {"customer_id": customer_id, "valid_until": str(date.today() + timedelta(30)),
                                       "lines": [{"sku": "PUMP-200", "quantity": 1}]}, expect=201)
        ret = self.a.post("returns", {"delivery_id": delivery["id"], "lines": [{"sku": "PUMP-200", "quantity": 1}],
                                      "reason": "scratched"}, expect=201)
        loan = self.a.post("loans", {"customer_id": customer_id, "lines": [{"sku": "PUMP-200", "quantity": 1}],
                                     "due_date": str(date.today() + timedelta(days=14))}, expect=201)
        request = self.a.post("service-requests", {
            "customer_id": customer_id, "sku": "PUMP-200", "delivery_id": delivery["id"], "type": "repair",
            "priority": "normal", "description": "leaks at the flange"}, expect=201)
        self.ids = {"customer_id": customer_id, "order_id": order["id"], "delivery_id": delivery["id"],
                    "invoice_id": invoice["id"], "receipt_id": receipt["id"], "visit_id": visit["id"],
                    "opportunity_id": opportunity["id"], "quote_id": quote["id"], "return_id": ret["id"],
                    "loan_id": loan["id"], "service_request_id": request["id"], "confirmed_order_id": confirmed["id"],
                    "draft_order_id": draft["id"], "owner": self.a.get("me", expect=200)["staff_id"]}
        self.documents = [org.customer, order, delivery, invoice, receipt, visit, confirmed, draft, opportunity,
                          quote, ret, loan, request]
        # what would give A's business away in someone else's answer: its ids, numbers and the customer's name
        self.marks = {org.customer["name"]} | {doc["id"] for doc in self.documents} | {
            doc["number"] for doc in self.documents if doc.get("number")}

    def leaks(self, answer):
        return sorted(mark for mark in self.marks if mark in answer.text)


@pytest.fixture(scope="module")
def platform(start_module_platform):
    return start_module_platform("customer", "order", "inventory", "billing", "aftersales",
                                 env={"gateway": {"GATEWAY_RATE_LIMIT_RATE": "0"}})


@pytest.fixture(scope="module")
def world(platform):
    return World(platform)


@pytest.fixture(scope="module")
def outsiders(world):
    return {"rep B (same team)": world.b, "the manager of another team": world.other_manager}


def same_as_for_nobody(client, method, path, body, real, fake):
    """(status, body) of the call with A's id `real`, and whether it is exactly the answer for an id
    nobody has (`fake` in its place), once the ids are masked."""
    def ask(value):
        answer = client.request(method, path.replace(real, value), json=_swap(body, real, value) if method != "GET"
                                else None)
        text = answer.text.replace(value, "<id>")
        return answer.status_code, json.loads(text) if text else None
    status, seen = ask(real)
    return status, seen, (status, seen) == ask(fake)


def _swap(body, real, value):
    return json.loads(json.dumps(body).replace(real, value)) if body is not None else None


def test_a_b_rep_cannot_read_another_reps_records_nor_tell_them_from_none(world, outsiders):
    """API.md "Row-level access": someone else's record answers 404, not 403, so ids cannot be probed —
    every record of rep A, read by rep B or another team's manager, answers 404 NOT_FOUND exactly as
    an id nobody has does."""
    i = world.ids
    reads = [f"customers/{i['customer_id']}", f"customers/{i['customer_id']}/contacts",
             f"customers/{i['customer_id']}/owner-history", f"customers/{i['customer_id']}/classification-history",
             f"customers/{i['customer_id']}/follow-ups", f"customers/{i['customer_id']}/purchases",
             f"customers/{i['customer_id']}/reviews", f"customers/{i['customer_id']}/overview",
             f"customers/{i['customer_id']}/credit", f"customers/{i['customer_id']}/statements/{MONTH}",
             f"orders/{i['order_id']}", f"orders/{i['order_id']}/timeline", f"orders/{i['draft_order_id']}",
             f"deliveries/{i['delivery_id']}", f"invoices/{i['invoice_id']}", f"receipts/{i['receipt_id']}",
             f"quotes/{i['quote_id']}", f"returns/{i['return_id']}", f"loans/{i['loan_id']}",
             f"service-requests/{i['service_request_id']}", f"visits/{i['visit_id']}",
             f"opportunities/{i['opportunity_id']}"]
    for path in reads:  # rep A reads them all: the ids are real
        assert world.a.get(path).status_code == 200, path
    wrong = []
    for who, client in outsiders.items():
        for path in reads:
            real = next(value for value in i.values() if value in path)
            status, seen, alike = same_as_for_nobody(client, "GET", path, None, real, str(uuid.uuid4()))
            if status != 404 or seen.get("code") != "NOT_FOUND" or not alike:
                wrong.append(f"GET {path} by {who}: {status} {seen} (alike an unknown id: {alike})")
    assert not wrong, "\n".join(wrong)


def test_a_b_rep_cannot_change_or_use_another_reps_records(world, outsiders):
    """The same for every change (404) and for every document raised from one of A's records: refused
    exactly as with an id nobody has (API.md "Row-level access": 404 for the record in the path; for one
    named in the body, the answer the endpoint gives an unknown id — 404, or 422 naming the field),
    and nothing changed."""
    i = world.ids
    lines = [{"sku": "PUMP-200", "quantity": 1}]
    today = str(date.today())
    writes = [
        ("PATCH", f"customers/{i['customer_id']}", {"address": "moved"}, "customer_id"),
        ("POST", f"customers/{i['customer_id']}/contacts", {"name": "Mole"}, "customer_id"),
        ("POST", f"customers/{i['customer_id']}/reviews", {"business_status": "operating", "credit_opinion": "sound",
                                                           "valid_until": str(date.today() + timedelta(9))},
         "customer_id"),
        ("POST", f"customers/{i['customer_id']}/follow-ups", {"channel": "phone", "summary": "called",
                                                              "occurred_at": datetime.now(timezone.utc).isoformat()},
         "customer_id"),
        ("POST", f"customers/{i['customer_id']}/statements/{LAST_MONTH}/confirm", {"outcome": "confirmed"},
         "customer_id"),
        ("POST", "orders", {"customer_id": i["customer_id"], "lines": lines}, "customer_id"),
        ("POST", "quotes", {"customer_id": i["customer_id"], "lines": lines, "valid_until": today}, "customer_id"),
        ("POST", "loans", {"customer_id": i["customer_id"], "lines": lines, "due_date": today}, "customer_id"),
        ("POST", "visits", {"customer_id": i["customer_id"], "purpose": "spy",
                            "planned_at": (datetime.now(timezone.utc) + timedelta(1)).isoformat()}, "customer_id"),
        ("POST", "opportunities", {"customer_id": i["customer_id"], "title": "mine now", "expected_amount": "1.00",
                                   "probability": 10}, "customer_id"),
        ("POST", "receipts", {"customer_id": i["customer_id"], "amount": "1.00", "method": "bank_transfer",
                              "reference": "x", "received_at": today}, "customer_id"),
        ("POST", "service-requests", {"customer_id": i["customer_id"], "sku": "PUMP-200", "type": "consultation",
                                      "priority": "normal", "description": "?"}, "customer_id"),
        ("POST", f"orders/{i['draft_order_id']}/confirm", None, "draft_order_id"),
        ("POST", f"orders/{i['draft_order_id']}/cancel", {}, "draft_order_id"),
        ("POST", "deliveries", {"order_id": i["confirmed_order_id"], "lines": lines}, "confirmed_order_id"),
        ("POST", "deliveries", {"order_id": i["draft_order_id"], "lines": lines}, "draft_order_id"),
        ("POST", "invoices", {"delivery_ids": [i["delivery_id"]], "kind": "ordinary"}, "delivery_id"),
        ("POST", "returns", {"delivery_id": i["delivery_id"], "lines": lines, "reason": "x"}, "delivery_id"),
        ("POST", f"quotes/{i['quote_id']}/submit", None, "quote_id"),
        ("PATCH", f"opportunities/{i['opportunity_id']}", {"probability": 99}, "opportunity_id"),
        ("POST", f"opportunities/{i['opportunity_id']}/close", {"outcome": "lost", "reason": "x"}, "opportunity_id"),
        ("POST", f"service-requests/{i['service_request_id']}/feedback", {"rating": 1, "comment": "x"},
         "service_request_id"),
        ("POST", f"visits/{i['visit_id']}/cancel", {"reason": "x"}, "visit_id"),
        ("POST", f"receipts/{i['receipt_id']}/allocations",
         {"allocations": [{"invoice_id": i["invoice_id"], "amount": "1.00"}]}, "receipt_id"),
    ]
    before = {path: world.a.get(path, expect=200) for path in (
        f"customers/{i['customer_id']}", f"customers/{i['customer_id']}/contacts", f"orders/{i['draft_order_id']}",
        f"quotes/{i['quote_id']}", f"opportunities/{i['opportunity_id']}", f"deliveries?order_id={i['confirmed_order_id']}",
        f"receipts/{i['receipt_id']}", f"orders?customer_id={i['customer_id']}", f"visits/{i['visit_id']}")}
    wrong = []
    for who, client in outsiders.items():
        for method, path, body, name in writes:
            status, seen, alike = same_as_for_nobody(client, method, path, body, i[name], str(uuid.uuid4()))
            if status == 403 and alike:
                continue  # the role may not do this to anyone's record (tests/security/matrix.py): nothing told
            referenced = i[name] not in path  # named in the body, not the record the path is about
            if not alike or (status != 404 and not (referenced and 400 <= status < 500)):
                wrong.append(f"{method} {path} {body} by {who}: {status} {seen} (alike an unknown id: {alike})")
    after = {path: world.a.get(path, expect=200) for path in before}
    assert not wrong, "\n".join(wrong)
    assert after == before


def _list_filters(document):
    """GET operations without path parameters that take one of A's ids as a filter: {path: [names]}."""
    found = {}
    for path, item in document["paths"].items():
        get = item.get("get")
        if not get or "{" in path:
            continue
        names = [p.get("name") for p in get.get("parameters", [])]
        found[path[len(API) + 1:]] = [n for n in names if n in ("customer_id", "order_id", "delivery_id", "owner", "q")]
    return found


def test_no_list_filter_count_or_report_gives_another_reps_records_away(platform, world, outsiders):
    """Every list and report of the served OpenAPI document, read by rep B and another team's manager —
    unfiltered and filtered by A's customer, order, delivery or staff id — shows none of A's ids,
    numbers or the customer's name, and a filter on A's ids answers as a filter on an id nobody has
    (so counts and empty pages do not tell either). Rep A's own answers do show them: the check sees."""
    document = requests.get(platform.api("openapi.json"), timeout=10).json()
    lists = _list_filters(document)
    assert len(lists) >= 30
    seen_by_a = set()
    wrong = []
    for path, filters in lists.items():
        queries = [{}] + [{name: world.ids.get(name, world.org.customer["name"])} for name in filters]
        for query in queries:
            own = world.a.get(path, params=query)
            seen_by_a.update(world.leaks(own) + (AMOUNTS.findall(own.text) if path.startswith(COUNTS) else []))
            for who, client in outsiders.items():
                answer = client.get(path, params=query)
                if answer.status_code == 403:
                    continue  # the role may not read this list at all
                shows = world.leaks(answer) + (AMOUNTS.findall(answer.text) if path.startswith(COUNTS) else [])
                if answer.status_code >= 500 or shows:
                    wrong.append(f"GET {path} {query} by {who}: {answer.status_code} shows {shows}")
                for name, value in query.items():
                    nobody = client.get(path, params={name: str(uuid.uuid4())})
                    if (answer.status_code, _masked(answer, value)) != (nobody.status_code, _masked(nobody, None)):
                        wrong.append(f"GET {path}?{name}=<A's> by {who} differs from an unknown {name}: "
                                     f"{answer.status_code} {answer.text[:200]} / {nobody.status_code} {nobody.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert {world.ids["customer_id"], world.ids["order_id"], world.ids["invoice_id"]} <= seen_by_a
    assert {'"5000.00"', '"200.00"'} <= seen_by_a  # A's pipeline and open receivable, in A's own reports


# A's figures (orders of 3, 2 and 1 pumps at 100.00, 300.00 invoiced, 100.00 collected, 5000.00 in the
# pipeline) in a count or report someone else reads would give A's business away without any id
AMOUNTS = re.compile(r'"(?:600|500|300|200|5000)(?:\.0+)?"')
COUNTS = ("reports/", "visits/weekly", "customers/pool", "statements/")


def _masked(answer, value):
    """The answer's JSON with the id asked for and every moment (generated_at, as_of) masked."""
    text = answer.text if value is None else answer.text.replace(value, "<id>")
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?", "<time>", text)
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", text)
    return text


def test_no_token_or_password_in_the_logs_of_this_run(platform, world):
    """The same log check as tests/security/test_access.py, after a whole order-to-cash business and
    every refused probe above: no access token or the admin's password in any process's log."""
    clients = [world.a, world.b, world.other_manager, world.org.admin, world.org.manager, world.org.head,
               world.org.finance, world.org.warehouse, world.org.pm]
    tokens = [client.headers["Authorization"].split()[1] for client in clients]
    assert not secrets_in_logs(platform, tokens + [platform.admin_password])
