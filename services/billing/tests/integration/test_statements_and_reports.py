"""The books on the real PostgreSQL: the money invariant under random sequences of operations,
monthly statements (FR-87) and their confirmation campaign (FR-88, FR-89), receivables aging and
DSO (FR-91), and the billing report per rep / team / region / product / customer (FR-90)."""
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from billing import domain
from shared.errors import BusinessRuleViolation, Forbidden, InvalidState, NotFound, ValidationFailed
from shared.workdays import local_date

D = Decimal


def rid():
    return str(uuid.uuid4())


def today():
    return local_date(datetime.now(timezone.utc))


def recent_months(count):
    month = domain.month_of(today())
    months = [month]
    for _ in range(count - 1):
        months.insert(0, domain.previous_month(months[0]))
    return months


def check_the_books(books):
    """The money invariant, each figure from its own records: for every customer, open receivables
    = Σ issued − Σ red − Σ allocated; every invoice's and receipt's running totals equal their
    documents; every month's statement closes into the next one's opening and equals open
    receivables less unallocated receipts at its end."""
    billing = books.rpc.billing
    for row in books.sql("SELECT i.id, i.total, i.reversed_amount, i.allocated_amount,"
                         " (SELECT COALESCE(sum(r.total), 0) FROM invoices r WHERE r.reverses = i.id) AS red,"
                         " (SELECT COALESCE(sum(a.amount), 0) FROM allocations a WHERE a.invoice_id = i.id"
                         "   AND a.reversed_at IS NULL) AS allocated"
                         " FROM invoices i WHERE i.status = 'issued' AND NOT i.red"):
        assert (row["reversed_amount"], row["allocated_amount"]) == (row["red"], row["allocated"])
        assert row["total"] - row["red"] - row["allocated"] >= 0
    for row in books.sql("SELECT r.allocated_amount, (SELECT COALESCE(sum(a.amount), 0) FROM allocations a"
                         " WHERE a.receipt_id = r.id AND a.reversed_at IS NULL) AS allocated, r.amount FROM receipts r"):
        assert row["allocated_amount"] == row["allocated"] <= row["amount"]
    customers = [r["customer_id"] for r in books.sql("SELECT customer_id FROM credit_accounts")]
    months = recent_months(5)
    for customer_id in customers:
        issued = books.value("SELECT COALESCE(sum(total), 0) FROM invoices WHERE customer_id = %s"
                             " AND status = 'issued' AND NOT red", customer_id)
        red = books.value("SELECT COALESCE(sum(total), 0) FROM invoices WHERE customer_id = %s AND red", customer_id)
        allocated = books.value("SELECT COALESCE(sum(amount), 0) FROM allocations WHERE customer_id = %s"
                                " AND reversed_at IS NULL", customer_id)
        account = books.rpc.billing.get_credit_account(actor=books.finance, customer_id=str(customer_id))
        assert D(account["open_receivables"]) == issued - red - allocated
        statements = [billing.get_statement(actor=books.finance, customer_id=str(customer_id), month=m)
                      for m in months]
        for this, following in zip(statements, statements[1:]):
            assert this["closing"] == following["opening"]
        for statement in statements:
            assert D(statement["closing"]) == D(statement["opening"]) + D(statement["invoiced"]) \
                - D(statement["red"]) - D(statement["received"])
            assert D(statement["closing"]) == D(statement["receivable"]) - D(statement["unallocated"])
        end = datetime.combine(domain.parse_month(months[-1])[1], datetime.min.time(),
                               tzinfo=timezone(timedelta(hours=8)))
        received = books.value("SELECT COALESCE(sum(amount), 0) FROM receipts WHERE customer_id = %s"
                               " AND status = 'confirmed' AND confirmed_at < %s", customer_id, end)
        assert D(statements[-1]["closing"]) == issued - red - received


operation = st.one_of(
    st.tuples(st.just("invoice"), st.integers(0, 2), st.integers(1, 5000), st.sampled_from([0, 20, 45, 80])),
    st.tuples(st.just("receipt"), st.integers(0, 2), st.integers(1, 8000), st.sampled_from([0, 20, 45, 80])),
    st.tuples(st.just("allocate"), st.integers(0, 99), st.integers(0, 99), st.integers(1, 6000)),
    st.tuples(st.just("red"), st.integers(0, 99), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("unallocate"), st.integers(0, 99), st.just(0), st.just(0)),
)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(operation, min_size=6, max_size=12))
def test_fr86_fr87_money_invariant_under_any_sequence_of_operations(books, operations):
    """balance = Σ issued − Σ red − Σ allocated for every customer, statement closing = next opening,
    whatever happens in whatever order; refusals change nothing."""
    if not hasattr(books, "people"):
        books.people = [books.customer() for _ in range(3)]
        books.docs = {"invoices": [], "receipts": []}
    billing = books.rpc.billing
    for kind, a, b, c in operations:
        if kind == "invoice":
            customer = books.people[a]
            delivery = books.goods_issued(customer, [("SKU-A", 4, str(D(b) / 100), "0.13")])
            invoice = books.invoice([delivery])
            books.backdate("invoices", invoice["id"], c, "issued_at", "due_date", "created_at")
            books.docs["invoices"].append(dict(invoice, customer=customer, delivery=delivery))
        elif kind == "receipt":
            receipt = books.receipt(books.people[a], str(D(b) / 100))
            books.backdate("receipts", receipt["id"], c, "registered_at", "confirmed_at")
            books.docs["receipts"].append(receipt)
        elif kind == "allocate" and books.docs["invoices"] and books.docs["receipts"]:
            receipt = books.docs["receipts"][a % len(books.docs["receipts"])]
            mine = [i for i in books.docs["invoices"] if i["customer_id"] == receipt["customer_id"]]
            if mine:
                before = books.sql("SELECT sum(allocated_amount) AS i FROM invoices")
                try:
                    books.allocate(receipt, [(mine[b % len(mine)], str(D(c) / 100))])
                except BusinessRuleViolation as exc:
                    assert exc.code == "OVER_ALLOCATION"
                    assert books.sql("SELECT sum(allocated_amount) AS i FROM invoices") == before
        elif kind == "red" and books.docs["invoices"]:
            invoice = books.docs["invoices"][a % len(books.docs["invoices"])]
            try:
                billing.reverse_invoice(request_id=rid(), actor=books.finance, invoice_id=invoice["id"],
                                        reason="allowance", lines=[{"delivery_line_id": invoice["lines"][0]
                                                                    ["delivery_line_id"], "quantity": b}])
            except BusinessRuleViolation as exc:
                assert exc.code == "REVERSAL_EXCEEDS_ORIGINAL"
        elif kind == "unallocate":
            active = books.sql("SELECT id, receipt_id FROM allocations WHERE reversed_at IS NULL ORDER BY id")
            if active:
                chosen = active[a % len(active)]
                billing.reverse_allocation(request_id=rid(), actor=books.finance, reason="corrected",
                                           receipt_id=str(chosen["receipt_id"]), allocation_id=str(chosen["id"]))
    check_the_books(books)


def last_campaign_month():
    now = today()
    for year in (now.year, now.year - 1):
        for month in (12, 6):
            end = domain.parse_month(f"{year}-{month:02d}")[1]
            if end <= now:
                return f"{year}-{month:02d}"


def days_ago(day):
    return (today() - day).days


def test_fr87_fr89_statements_confirmed_or_disputed_and_the_campaign_tracked(books):
    billing = books.rpc.billing
    month = last_campaign_month()
    mid_month = domain.parse_month(month)[0] + timedelta(days=14)
    rep2 = {"staff_id": rid(), "role": "sales_rep", "username": "rep2", "team": "North-2"}
    confirms, disputes, silent, quiet, elsewhere = (books.customer(), books.customer(), books.customer(),
                                                    books.customer(), books.customer(owner=rep2))
    for customer in (confirms, disputes, silent, elsewhere):
        invoice = books.invoice([books.goods_issued(customer, [("SKU-A", 2, "565.00", "0.13")])])
        books.backdate("invoices", invoice["id"], days_ago(mid_month), "issued_at", "due_date")
    receipt = books.receipt(confirms, "400.00")
    books.backdate("receipts", receipt["id"], days_ago(mid_month) - 3, "registered_at", "confirmed_at")

    statement = billing.get_statement(actor=books.rep, customer_id=confirms["customer_id"], month=month)
    assert (statement["invoiced"], statement["received"], statement["closing"]) == ("1130.00", "400.00", "730.00")
    assert statement["final"] is True and statement["confirmation"] is None
    assert [e["kind"] for e in statement["entries"]] == ["invoice", "receipt"]
    with pytest.raises(NotFound):
        billing.get_statement(actor=rep2, customer_id=confirms["customer_id"], month=month)

    current = domain.month_of(today())
    with pytest.raises(BusinessRuleViolation) as refused:
        billing.confirm_statement(request_id=rid(), actor=books.rep, customer_id=confirms["customer_id"],
                                  month=current, outcome="confirmed")
    assert refused.value.code == "STATEMENT_PERIOD_OPEN"
    with pytest.raises(ValidationFailed) as refused:  # a dispute says what is disputed
        billing.confirm_statement(request_id=rid(), actor=books.rep, customer_id=disputes["customer_id"],
                                  month=month, outcome="disputed")
    assert list(refused.value.errors) == ["note"]
    with pytest.raises(Forbidden):
        billing.confirm_statement(request_id=rid(), actor={"staff_id": rid(), "role": "warehouse"},
                                  customer_id=confirms["customer_id"], month=month, outcome="confirmed")
    done = billing.confirm_statement(request_id=rid(), actor=books.rep, customer_id=confirms["customer_id"],
                                     month=month, outcome="confirmed", contact="Li Wei (purchasing)")
    assert done["confirmation"]["status"] == "confirmed" and done["confirmation"]["contact"] == "Li Wei (purchasing)"
    with pytest.raises(InvalidState):
        billing.confirm_statement(request_id=rid(), actor=books.rep, customer_id=confirms["customer_id"],
                                  month=month, outcome="disputed", note="changed our mind")
    billing.confirm_statement(request_id=rid(), actor=books.rep, customer_id=disputes["customer_id"], month=month,
                              outcome="disputed", note="invoice of the 15th not received")

    campaign = billing.get_confirmation_campaign(actor=books.finance, month=month)
    statuses = {i["customer_id"]: i["status"] for i in campaign["items"]}
    assert statuses == {confirms["customer_id"]: "confirmed", disputes["customer_id"]: "disputed",
                        silent["customer_id"]: "pending", elsewhere["customer_id"]: "pending"}
    assert quiet["customer_id"] not in statuses  # no balance, no movement: nothing to confirm
    assert (campaign["customers"], campaign["confirmed"], campaign["disputed"], campaign["pending"],
            campaign["completion"]) == (4, 1, 1, 2, "0.2500")
    by_owner = {o["owner_id"]: (o["customers"], o["confirmed"], o["completion"]) for o in campaign["by_owner"]}
    assert by_owner == {books.rep["staff_id"]: (3, 1, "0.3333"), rep2["staff_id"]: (1, 0, "0.0000")}
    mine = billing.get_confirmation_campaign(actor=books.rep, month=month)
    assert mine["customers"] == 3 and elsewhere["customer_id"] not in {i["customer_id"] for i in mine["items"]}
    with pytest.raises(ValidationFailed) as refused:
        billing.get_confirmation_campaign(actor=books.finance, month="2026-05")
    assert "month" in refused.value.errors
    # a resolved dispute is confirmed later; the history keeps both
    billing.confirm_statement(request_id=rid(), actor=books.finance, customer_id=disputes["customer_id"],
                              month=month, outcome="confirmed", note="copy of the invoice sent")
    resolved = billing.get_statement(actor=books.finance, customer_id=disputes["customer_id"], month=month)
    assert [h["status"] for h in resolved["confirmation_history"]] == ["disputed", "confirmed"]
    check_the_books(books)


def test_fr91_receivables_aging_buckets_and_dso(books):
    billing = books.rpc.billing
    customer = books.customer()
    rep2 = {"staff_id": rid(), "role": "sales_rep", "username": "rep2", "team": "North-2"}
    other = books.customer(owner=rep2)
    past_due = {-10: "100.00", 15: "200.00", 45: "400.00", 75: "800.00", 120: "1600.00"}
    made = {}
    for days, amount in past_due.items():  # due date = issue date + 30 days: backdate by 30 + days past due
        invoice = books.invoice([books.goods_issued(customer, [("SKU-A", 1, amount, "0.13")])])
        books.backdate("invoices", invoice["id"], 30 + days, "issued_at", "due_date")
        made[days] = invoice
    books.invoice([books.goods_issued(other, [("SKU-A", 1, "50.00", "0.13")])])
    books.allocate(books.receipt(customer, "150.00"), [(made[45], "150.00")])

    aging = billing.get_receivables_aging(actor=books.finance, customer_id=customer["customer_id"])
    assert aging["totals"] == {"current": "100.00", "days_1_30": "200.00", "days_31_60": "250.00",
                               "days_61_90": "800.00", "days_over_90": "1600.00", "total": "2950.00"}
    [row] = aging["customers"]
    assert row["customer_id"] == customer["customer_id"] and row["total"] == "2950.00"
    assert row["oldest_due_date"] == (today() - timedelta(days=120)).isoformat()
    # DSO over 90 days: receivable / sales issued in the 90 days up to as_of × 90
    sales = D("100.00") + D("200.00") + D("400.00")  # issued 20, 45 and 75 days ago; the others earlier
    assert D(aging["dso"]) == (D("2950.00") / sales * 90).quantize(D("0.1")) and aging["dso_days"] == 90

    # as of a past day: only what was issued by then, as open as it was then (the payment came later)
    then = today() - timedelta(days=50)
    earlier = billing.get_receivables_aging(actor=books.finance, as_of=then.isoformat(),
                                            customer_id=customer["customer_id"])
    assert earlier["totals"]["total"] == "2800.00"  # 400 + 800 + 1600, nothing paid yet
    assert earlier["totals"]["current"] == "400.00" and earlier["totals"]["days_61_90"] == "1600.00"

    whole = billing.get_receivables_aging(actor=books.finance)
    assert whole["totals"]["total"] == "3000.00" and len(whole["customers"]) == 2
    assert [c["customer_id"] for c in billing.get_receivables_aging(actor=rep2)["customers"]] == \
        [other["customer_id"]]
    with pytest.raises(ValidationFailed):
        billing.get_receivables_aging(actor=books.finance, as_of="yesterday")


def test_fr91_issue11_the_aging_pages_its_customers_by_total_with_totals_over_all(books):
    """The customers come the largest totals first, `limit` at a time with a cursor to the next
    page; totals, DSO and customer_count are over every customer whatever the page."""
    billing = books.rpc.billing
    amounts = ["300.00", "100.00", "300.00", "50.00", "200.00"]
    people = []
    for amount in amounts:
        customer = books.customer()
        books.invoice([books.goods_issued(customer, [("SKU-A", 1, amount, "0.13")])])
        people.append(customer)
    whole = billing.get_receivables_aging(actor=books.finance)
    assert whole["customer_count"] == 5 and whole["next_cursor"] is None
    expected = sorted(((D(a), c["customer_id"]) for a, c in zip(amounts, people)), key=lambda t: (-t[0], t[1]))
    assert [(D(c["total"]), c["customer_id"]) for c in whole["customers"]] == expected
    seen, cursor = [], None
    while True:
        page = billing.get_receivables_aging(actor=books.finance, limit=2, cursor=cursor)
        assert page["totals"] == whole["totals"] and page["dso"] == whole["dso"] and page["customer_count"] == 5
        seen += page["customers"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == whole["customers"]
    for bad in ({"limit": 0}, {"limit": 201}, {"cursor": "not-ours"}):
        with pytest.raises(ValidationFailed) as refused:
            billing.get_receivables_aging(actor=books.finance, **bad)
        assert list(refused.value.errors) == list(bad)


def test_fr90_billing_report_per_rep_team_region_product_customer(books):
    billing = books.rpc.billing
    rep2 = {"staff_id": rid(), "role": "sales_rep", "username": "rep2", "team": "North-2"}
    east = books.customer(region="East China")
    north = books.customer(owner=rep2, region="North China")
    east_invoice = books.invoice([books.goods_issued(east, [("SKU-A", 2, "100.00", "0.13"),
                                                            ("SKU-B", 1, "300.00", "0.13")])])
    north_delivery = books.goods_issued(north, [("SKU-B", 3, "100.00", "0.13")])
    north_invoice = books.invoice([north_delivery])
    billing.reverse_invoice(request_id=rid(), actor=books.finance, invoice_id=north_invoice["id"], reason="damaged",
                            lines=[{"delivery_line_id": north_delivery["lines"][0]["delivery_line_id"],
                                    "quantity": 1}])
    books.allocate(books.receipt(east, "250.00"), [(east_invoice, "250.00")])
    books.allocate(books.receipt(north, "200.00", by=books.order_desk), [(north_invoice, "200.00")],
                   by=books.order_desk)
    day = today().isoformat()

    def report(group_by, actor=books.finance, start=day, end=day):
        answer = billing.report_billing(actor=actor, period_start=start, period_end=end, group_by=group_by)
        return {g["key"]: (g["invoiced"], g["collected"], g["collection_rate"], g["receivable"], g["dso"])
                for g in answer["groups"]}, answer["totals"]

    by_rep, totals = report("rep")
    assert by_rep == {books.rep["staff_id"]: ("500.00", "250.00", "0.5000", "250.00", "0.5"),
                      rep2["staff_id"]: ("200.00", "200.00", "1.0000", "0.00", "0.0")}
    assert (totals["invoiced"], totals["collected"], totals["collection_rate"]) == ("700.00", "450.00", "0.6429")
    assert set(report("team")[0]) == {"East-1", "North-2"}
    assert report("region")[0]["North China"][:2] == ("200.00", "200.00")
    assert report("customer")[0][east["customer_id"]][:2] == ("500.00", "250.00")
    by_product, _ = report("product")
    # the east receipt is shared by line amount: 200 / 500 to SKU-A, 300 / 500 to SKU-B
    assert by_product == {"SKU-A": ("200.00", "100.00", "0.5000", "100.00", "0.5"),
                          "SKU-B": ("500.00", "350.00", "0.7000", "150.00", "0.3")}
    assert report("rep", actor=rep2)[0] == {rep2["staff_id"]: ("200.00", "200.00", "1.0000", "0.00", "0.0")}
    last_month = domain.parse_month(domain.previous_month(domain.month_of(today())))[0]
    assert report("rep", start=last_month.isoformat(), end=(last_month + timedelta(days=27)).isoformat())[0] == {}
    with pytest.raises(ValidationFailed) as refused:
        billing.report_billing(actor=books.finance, period_start=day, period_end="2000-01-01", group_by="planet")
    assert set(refused.value.errors) == {"period_end", "group_by"} or set(refused.value.errors) == {"group_by"}
