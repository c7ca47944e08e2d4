"""Issue 11: the receivables aging (FR-91) and the billing report's receivable (FR-90) read each
invoice's open balance off its running totals (as of now) and skip the invoices settled before a
past instant (as of then). Each shortcut must equal the ground truth computed from the facts — the
invoices, their red invoices and the allocations standing at the instant — after allocations,
reversed allocations, red invoices, returns, concurrent writers and an event delivered twice."""
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from billing.db import Ledger
from shared.errors import BusinessRuleViolation

D = Decimal

TRUTH = """
SELECT i.id, i.total
       - (SELECT COALESCE(sum(r.total), 0) FROM invoices r WHERE r.reverses = i.id AND r.issued_at < %(t)s)
       - (SELECT COALESCE(sum(a.amount), 0) FROM allocations a WHERE a.invoice_id = i.id AND a.allocated_at < %(t)s
          AND (a.reversed_at IS NULL OR a.reversed_at >= %(t)s)) AS open
FROM invoices i WHERE i.status = 'issued' AND NOT i.red AND i.issued_at < %(t)s"""


def truth(books, instant):
    """What was open on each invoice at `instant`, summed from every red and allocation ever made."""
    with books.conn.cursor() as cur:
        cur.execute(TRUTH, {"t": instant})
        return {row["id"]: row["open"] for row in cur.fetchall() if row["open"] != 0}


def shortcut(books, instant, **only):
    sql, params = Ledger.open_items_sql(instant, **only)
    return {row["id"]: row["open"] for row in books.sql(sql, *params) if row["open"] != 0}


def aging_totals(books, instant, day):
    """The aging's totals and per-customer totals as Ledger.aging computes them in SQL."""
    class Uow:  # Ledger's SQL on the test's own connection
        def all(self, sql, params):
            return books.sql(sql, *params)
    totals, rows = Ledger(Uow()).aging(instant, day, limit=1000)
    return totals, {row["customer_id"]: row["total"] for row in rows}


def stamp():
    return datetime.now(timezone.utc)


def check_every_instant(books, instants):
    future = stamp() + timedelta(days=1)
    assert shortcut(books, future) == truth(books, future)
    customers = [row["customer_id"] for row in books.sql("SELECT DISTINCT customer_id FROM invoices")]
    for instant in instants + [future]:
        expected = truth(books, instant)
        assert shortcut(books, instant) == expected, f"as of {instant.isoformat()}"
        for customer in customers:  # one customer's items, as the statement and the credit review ask
            mine = {row["id"] for row in books.sql("SELECT id FROM invoices WHERE customer_id = %s", customer)}
            assert shortcut(books, instant, customer_id=customer) == \
                shortcut(books, instant, customer_ids=[customer]) == \
                {i: v for i, v in expected.items() if i in mine}
    # the aging's sums in SQL equal the ground truth's, per customer and in total
    for instant in instants + [future]:
        expected = truth(books, instant)
        per_customer = {}
        for row in books.sql("SELECT id, customer_id FROM invoices WHERE id = ANY(%s::uuid[])",
                             [str(i) for i in expected]):
            per_customer[row["customer_id"]] = per_customer.get(row["customer_id"], D(0)) + expected[row["id"]]
        totals, customers = aging_totals(books, instant, instant.date())
        assert totals["total"] == sum(expected.values(), D(0))
        assert customers == {c: v for c, v in per_customer.items() if v > 0}


def test_fr91_issue11_open_balances_equal_the_facts_after_allocations_reversals_reds_and_returns(books):
    """FR-86, FR-91, FR-95: settle, reopen, settle again, red part of a paid invoice (its payment
    taken back), return goods (a red invoice by event, delivered twice): at every instant in between
    and as of now, the shortcut's open items equal the sums over the facts."""
    billing = books.rpc.billing
    customer, other = books.customer(), books.customer()
    instants = [stamp()]
    delivery = books.goods_issued(customer, [("SKU-A", 4, "100.00", "0.13"), ("SKU-B", 2, "50.00", "0.13")])
    first = books.invoice([delivery])
    second = books.invoice([books.goods_issued(customer, [("SKU-A", 1, "300.00", "0.13")])])
    third = books.invoice([books.goods_issued(other, [("SKU-B", 5, "20.00", "0.13")])])
    instants.append(stamp())
    receipt = books.receipt(customer, "1000.00")
    made = books.allocate(receipt, [(first, "500.00")])  # settles the first invoice
    instants.append(stamp())
    [allocation_id] = [a["id"] for a in made["allocations"] if a["invoice_id"] == first["id"]]
    billing.reverse_allocation(request_id=str(uuid.uuid4()), actor=books.finance, reason="wrong invoice",
                               receipt_id=receipt["id"], allocation_id=str(allocation_id))  # reopens it
    instants.append(stamp())
    books.allocate(receipt, [(first, "200.00"), (second, "300.00")])  # part paid, and settled
    instants.append(stamp())
    books.allocate(receipt, [(first, "300.00")])  # settled again
    instants.append(stamp())
    # a red invoice on the paid first invoice: its payment is taken back in part
    billing.reverse_invoice(request_id=str(uuid.uuid4()), actor=books.finance, invoice_id=first["id"],
                            reason="allowance", lines=[{"delivery_line_id": delivery["lines"][1]["delivery_line_id"],
                                                        "quantity": 1}])
    instants.append(stamp())
    # returned goods: billing raises the red invoice from the event, and a second delivery of the
    # same event changes nothing
    data = {"return_id": str(uuid.uuid4()), "return_number": "RR-2026-000001",
            "delivery_id": delivery["delivery_id"], "order_id": delivery["order_id"],
            "customer_id": delivery["customer_id"], "received_at": stamp().isoformat(),
            "lines": [{"delivery_line_id": delivery["lines"][0]["delivery_line_id"], "sku": "SKU-A", "quantity": 1}]}
    event = books.publish("inventory", "goods.returned", data)
    books.applied(event, "on_goods_returned")
    instants.append(stamp())
    books.dispatch("inventory", "goods.returned", event)  # delivered twice
    later = dict(data, return_id=str(uuid.uuid4()), return_number="RR-2026-000002")
    books.applied(books.publish("inventory", "goods.returned", later), "on_goods_returned")
    instants.append(stamp())
    # the allowance and the two returns: the event delivered twice raised one red invoice
    assert books.value("SELECT count(*) FROM invoices WHERE red AND reverses = %s", first["id"]) == 3
    books.allocate(books.receipt(other, "100.00"), [(third, "100.00")])
    instants.append(stamp())
    check_every_instant(books, instants)


def test_fr91_issue11_open_balances_equal_the_facts_under_concurrent_allocations(books):
    """FR-86: receipts allocated to the same invoices from several threads at once (the guarded
    UPDATE refuses what would over-allocate) leave running totals and settled_at that the
    shortcut reads exactly as the facts sum up, at every instant."""
    customer = books.customer()
    invoices = [books.invoice([books.goods_issued(customer, [("SKU-A", 1, "100.00", "0.13")])]) for _ in range(3)]
    receipts = [books.receipt(customer, "100.00") for _ in range(6)]
    instants = [stamp()]
    calls = [books.rpc.billing.allocate_receipt.call_async(
        request_id=str(uuid.uuid4()), actor=books.rep, receipt_id=receipt["id"],
        allocations=[{"invoice_id": invoices[n % 3]["id"], "amount": "60.00"}]) for n, receipt in enumerate(receipts)]
    refused = 0
    for call in calls:
        try:
            call.result()
        except BusinessRuleViolation:  # the second 60.00 on a 100.00 invoice is refused
            refused += 1
        instants.append(stamp())
    assert refused == 3
    assert books.value("SELECT count(*) FROM invoices WHERE settled_at IS NULL AND allocated_amount = 60") == 3
    # and the rest paid from the refused receipts, at once again
    calls = [books.rpc.billing.allocate_receipt.call_async(
        request_id=str(uuid.uuid4()), actor=books.rep, receipt_id=receipt["id"],
        allocations=[{"invoice_id": invoice["id"], "amount": "40.00"}])
        for receipt, invoice in zip([r for r in receipts if books.value(
            "SELECT allocated_amount FROM receipts WHERE id = %s", r["id"]) == 0], invoices)]
    for call in calls:
        call.result()
        instants.append(stamp())
    instants.append(stamp())
    check_every_instant(books, sorted(instants))
