"""Issue 9, concurrency: the races a sales floor runs into, with real parallel HTTP clients against
the real gateway and services, and then the books read back through the services.

  * the last units of stock, wanted by eight orders at once: one is confirmed, seven get
    409 INSUFFICIENT_STOCK and hold nothing (DESIGN.md §3 "Concurrency": no stock count negative);
  * the last yuan of credit, wanted by eight orders at once: one is confirmed, seven wait on
    credit_hold, the exposure is the limit exactly (FR-63–FR-65: the limit is enforced);
  * one Idempotency-Key from ten clients at once, for an order and for its confirmation: one order,
    one reservation, every client gets the one answer (or 409 IDEMPOTENCY_KEY_IN_USE while it runs);
  * the same quote approved twice at once, at each of its two steps (FR-46): one decision per step;
  * a "not now" refusal is not kept for the Idempotency-Key: the retry after the goods came in runs.

Each client is its own thread (green under `nameko test`, each with its own connection: all the requests
are in flight together), all released together by a barrier. One
platform for the module; each test works on its own product or customer.
"""
import threading
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.e2e.conftest import start_module_platform  # noqa: F401  (the module's platform)
from tests.e2e.osb import Org
from tests.e2e.reports_data import reviewed_customer

pytestmark = pytest.mark.slow

CLIENTS = 8


@pytest.fixture(scope="module")
def platform(start_module_platform):
    return start_module_platform("customer", "order", "inventory", "billing",
                                 env={"gateway": {"GATEWAY_RATE_LIMIT_RATE": "0"}})


@pytest.fixture(scope="module")
def org(platform):
    return Org(platform, stock=1000, limit="1000000.00")


def at_once(calls):
    """Run every callable in its own thread, all released at the same moment; their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, fn):
        barrier.wait()
        results[index] = fn()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def product(org, sku, stock):
    """A product at 100.00 with `stock` units in MAIN, once the order service has its price."""
    org.admin.post("products", {"sku": sku, "name": sku.title(), "unit": "pc", "list_price": "100.00",
                                "floor_price": "90.00", "vat_rate": "0.13"}, expect=201)
    if stock:
        receive(org, sku, stock)
    org.platform.wait_for(lambda: org.rep.post("orders", org.order_body(1) | {
        "lines": [{"sku": sku, "quantity": 1}]}).status_code == 201, what=f"the order service's price of {sku}")


def receive(org, sku, quantity):
    org.warehouse.post("stock/receipts", {"warehouse": "MAIN", "lines": [{"sku": sku, "quantity": quantity}],
                                          "reason": "production"}, expect=201)


def stock(org, sku):
    [level] = org.warehouse.get("stock", params={"sku": sku}, expect=200)["items"]
    return level["on_hand"], level["reserved"], level["available"]


def credit(org, customer_id):
    return org.finance.get(f"customers/{customer_id}/credit", expect=200)


def reservation(platform, order_id):
    """The inventory's reservation of the order, as its service tells it (None: it holds none)."""
    with platform.rpc() as rpc:
        try:
            found = rpc.inventory.get_reservation(actor={"staff_id": str(uuid.uuid4()), "role": "admin"},
                                                  order_id=order_id)
        except Exception as exc:  # noqa: BLE001 — a RemoteError naming the kit's NotFound
            assert "NOT_FOUND" in str(exc), exc
            return None
    return found["status"]


def test_the_last_units_of_stock_go_to_exactly_one_of_eight_orders_confirmed_at_once(platform, org):
    """Stock 3 and eight orders of 3, confirmed by eight clients at the same moment: exactly one is
    confirmed; the seven others get 409 INSUFFICIENT_STOCK, stay draft and hold no stock and no credit."""
    product(org, "LAST-3", 3)
    orders = [org.rep.post("orders", org.order_body(3) | {"lines": [{"sku": "LAST-3", "quantity": 3}]}, expect=201)
              for _ in range(CLIENTS)]
    answers = at_once([lambda o=o: org.rep.post(f"orders/{o['id']}/confirm") for o in orders])

    winners = [o for o, a in zip(orders, answers) if a.status_code == 200]
    assert len(winners) == 1, [(a.status_code, a.text[:120]) for a in answers]
    assert answers[orders.index(winners[0])].json()["status"] == "confirmed"
    losers = [(o, a) for o, a in zip(orders, answers) if o is not winners[0]]
    assert {(a.status_code, a.json()["code"]) for _, a in losers} == {(409, "INSUFFICIENT_STOCK")}
    assert stock(org, "LAST-3") == (3, 3, 0)
    assert reservation(platform, winners[0]["id"]) == "committed"
    for order, _ in losers:  # nothing half-done
        assert org.rep.get(f"orders/{order['id']}", expect=200)["status"] == "draft"
        assert reservation(platform, order["id"]) in (None, "released")
    held = {r["order_id"] for r in credit(org, org.customer["id"])["reservations"]}
    assert held & {o["id"] for o in orders} == {winners[0]["id"]}


def test_the_last_yuan_of_credit_goes_to_exactly_one_of_eight_orders_confirmed_at_once(platform, org):
    """A limit of 1000.00 and eight orders of 1000.00 (10 × 100.00, VAT included), confirmed at the same
    moment: exactly one is confirmed, the seven others wait on credit_hold (API.md "Quotes, contracts,
    orders"); the exposure is the limit to the yuan, only the winner holds credit."""
    customer = reviewed_customer(org, org.rep, f"Credit Race {org.suffix} Ltd.", "East China", limit="1000.00")
    orders = [org.rep.post("orders", {"customer_id": customer["id"], "lines": [{"sku": "PUMP-200", "quantity": 10}]},
                           expect=201) for _ in range(CLIENTS)]
    assert {o["total"] for o in orders} == {"1000.00"}
    answers = at_once([lambda o=o: org.rep.post(f"orders/{o['id']}/confirm") for o in orders])

    assert [a.status_code for a in answers] == [200] * CLIENTS, [a.text[:200] for a in answers]
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["confirmed"] + ["credit_hold"] * (CLIENTS - 1)
    [winner] = [o for o, a in zip(orders, answers) if a.json()["status"] == "confirmed"]
    account = credit(org, customer["id"])
    assert (Decimal(account["exposure"]), Decimal(account["available"])) == (Decimal("1000.00"), Decimal("0"))
    assert [r["order_id"] for r in account["reservations"]] == [winner["id"]]
    for order in orders:  # what each order says of itself agrees with the books
        expected = "confirmed" if order is winner else "credit_hold"
        assert org.rep.get(f"orders/{order['id']}", expect=200)["status"] == expected


def test_one_idempotency_key_from_ten_clients_at_once_runs_once(platform, org):
    """API.md "Idempotency": ten clients send one POST /orders with one key (and body) at the same
    moment, then one confirmation with another key: one order, one reservation; every answer is the
    first answer, or 409 IDEMPOTENCY_KEY_IN_USE while it is still running — and a client that got
    that, retrying, gets the first answer."""
    product(org, "KEYED-1", 50)
    before = stock(org, "KEYED-1")
    body = org.order_body(7) | {"lines": [{"sku": "KEYED-1", "quantity": 7}]}
    key = f"order-{uuid.uuid4()}"
    created = at_once([lambda: org.rep.post("orders", body, key=key) for _ in range(10)])
    order = _one_answer(created, 201, lambda: org.rep.post("orders", body, key=key))
    listed = org.rep.get("orders", params={"customer_id": org.customer["id"], "limit": 200}, expect=200)["items"]
    assert len([o for o in listed if o["total"] == "700.00"]) == 1  # the only order of 7 × 100.00

    confirm_key = f"confirm-{uuid.uuid4()}"
    confirmed = at_once([lambda: org.rep.post(f"orders/{order['id']}/confirm", key=confirm_key)
                         for _ in range(10)])
    answer = _one_answer(confirmed, 200, lambda: org.rep.post(f"orders/{order['id']}/confirm", key=confirm_key))
    assert answer["status"] == "confirmed"
    on_hand, reserved, available = stock(org, "KEYED-1")
    assert (on_hand, reserved) == (before[0], before[1] + 7)
    assert reservation(platform, order["id"]) == "committed"


def _one_answer(answers, status, retry):
    """The one answer ten clients got: the same status and body for all that were answered, 409
    IDEMPOTENCY_KEY_IN_USE for the others, whose retry replays it."""
    done = [a for a in answers if a.status_code == status]
    busy = [a for a in answers if a.status_code != status]
    assert done, [(a.status_code, a.text[:200]) for a in answers]
    assert all((a.status_code, a.json()["code"]) == (409, "IDEMPOTENCY_KEY_IN_USE") for a in busy), \
        [(a.status_code, a.text[:200]) for a in busy]
    assert len({a.text for a in done}) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in done) == 1  # ran once; the rest are replays
    for _ in busy:
        again = retry()
        assert (again.status_code, again.text, again.headers["Idempotent-Replayed"]) == (status, done[0].text, "true")
    return done[0].json()


def test_the_same_quote_approved_twice_at_once_is_decided_once_per_step(platform, org):
    """FR-46: a price below the floor needs the rep's manager and then the sales head. Each approves
    from several clients at the same moment (separate keys: separate clicks): exactly one approval is
    recorded per step, the others are refused (403 NOT_YOUR_TURN once the step is decided, 409
    INVALID_STATE once nothing is left to approve), and the quote ends approved."""
    quote = org.rep.post("quotes", {"customer_id": org.customer["id"], "valid_until": str(date.today() + timedelta(30)),
                                    "lines": [{"sku": "PUMP-200", "quantity": 10, "unit_price": "85.00"}]}, expect=201)
    pending = org.rep.post(f"quotes/{quote['id']}/submit", expect=200)
    assert pending["status"] == "pending_approval"
    assert [s["relation"] for s in pending["required_approvals"]] == ["direct_manager", "division_head"]

    for approver, status in ((org.manager, "pending_approval"), (org.head, "approved")):
        answers = at_once([lambda: approver.post(f"quotes/{quote['id']}/approve", {"comment": "ok"})
                           for _ in range(4)])
        ok = [a for a in answers if a.status_code == 200]
        assert len(ok) == 1, [(a.status_code, a.text[:200]) for a in answers]
        assert ok[0].json()["status"] == status
        refused = {(a.status_code, a.json()["code"]) for a in answers if a.status_code != 200}
        # the step was decided meanwhile: no longer the approver's turn (403, the next step is someone
        # else's), or nothing left to approve (409)
        assert refused and refused <= {(403, "NOT_YOUR_TURN"), (409, "INVALID_STATE")}, refused
    final = org.rep.get(f"quotes/{quote['id']}", expect=200)
    assert final["status"] == "approved"
    decided = [s for s in final["approvals"] if s["status"] == "approved"]
    assert sorted(s["relation"] for s in decided) == ["direct_manager", "division_head"]


def test_a_not_now_refusal_is_not_replayed_to_a_retry_with_the_same_key(platform, org):
    """API.md "Idempotency" keeps the first answer — a final one. 409 INSUFFICIENT_STOCK says "not
    now": once the goods are in, the retry with the same key confirms the order instead of getting
    the stale refusal again."""
    product(org, "LATE-5", 0)
    order = org.rep.post("orders", org.order_body(5) | {"lines": [{"sku": "LATE-5", "quantity": 5}]}, expect=201)
    key = f"confirm-{uuid.uuid4()}"
    short = org.rep.post(f"orders/{order['id']}/confirm", key=key)
    assert (short.status_code, short.json()["code"]) == (409, "INSUFFICIENT_STOCK")
    receive(org, "LATE-5", 5)
    retry = org.rep.post(f"orders/{order['id']}/confirm", key=key)
    assert retry.status_code == 200 and "Idempotent-Replayed" not in retry.headers, retry.text[:300]
    assert retry.json()["status"] == "confirmed"
    assert stock(org, "LATE-5") == (5, 5, 0)
    again = org.rep.post(f"orders/{order['id']}/confirm", key=key)  # now the final answer is kept
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
