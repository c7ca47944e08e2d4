"""Credit control (CMR, FR-63–FR-66) on the real PostgreSQL and RabbitMQ: reservations checked and
held atomically, holds and overrides, release, the conversion into receivables, finance's manual
limits, and the quarterly formula job with an injected time."""
import random
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from billing import domain
from shared.errors import BusinessRuleViolation, Forbidden, NotFound, ValidationFailed
from shared.workdays import local_date

D = Decimal


def rid():
    return str(uuid.uuid4())


def test_fr65_concurrent_orders_never_take_the_exposure_over_the_limit(books, container_factory, billing_config):
    from billing.service import BillingService

    container_factory(BillingService, billing_config).start()  # a second replica on the same database
    customer = books.customer()
    books.set_limit(customer, "10000.00")
    receivable = books.invoice([books.goods_issued(customer, [("SKU-A", 1, "1500.00", "0.13")])])
    rng = random.Random(7)
    amounts = [D(rng.randrange(10000, 120000)) / 100 for _ in range(40)]  # 100.00 … 1199.99, ~26 000 in all
    billing = books.rpc.billing
    replies = [(amount, billing.reserve_credit.call_async(reservation_id=rid(), order_id=rid(),
                                                          customer_id=customer["customer_id"], amount=str(amount)))
               for amount in amounts]
    reserved, refused = [], []
    for amount, reply in replies:
        try:
            answer = reply.result()
            assert answer["status"] == "reserved" and D(answer["exposure"]) <= D("10000.00")
            reserved.append(amount)
        except BusinessRuleViolation as exc:
            assert exc.code == "CREDIT_LIMIT_EXCEEDED"
            assert D(exc.extra["exposure"]) + D(exc.extra["requested"]) > D(exc.extra["limit"]) == D("10000.00")
            refused.append(amount)
    assert reserved and refused and len(reserved) + len(refused) == 40

    account = books.account(customer)
    held = books.value("SELECT sum(remaining) FROM credit_reservations WHERE status = 'reserved'")
    assert held == sum(reserved) == D(account["reserved"])
    assert D(account["exposure"]) == D(receivable["total"]) + sum(reserved) <= D(account["limit"])
    assert D(account["exposure"]) == D(account["open_receivables"]) + D(account["reserved"])
    assert books.value("SELECT count(*) FROM credit_holds") == len(refused) == len(books.outbox("credit.held"))
    # nothing that was refused fitted: the smallest refusal would not have fitted either at the end
    assert D(account["exposure"]) + min(refused) > D(account["limit"])


def test_fr65_reservation_is_idempotent_and_a_refusal_carries_the_figures(books):
    billing = books.rpc.billing
    customer = books.customer()
    books.set_limit(customer, "1000.00")
    order, reservation = rid(), rid()
    call = dict(reservation_id=reservation, order_id=order, customer_id=customer["customer_id"], amount="600.00")
    first = billing.reserve_credit(**call)
    assert first == billing.reserve_credit(**call)  # a retry after a broker bounce reserves nothing more
    assert (first["limit"], first["exposure"], first["available"]) == ("1000.00", "600.00", "400.00")
    with pytest.raises(ValidationFailed) as refused:
        billing.reserve_credit(**dict(call, amount="700.00"))
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED" and "reservation_id" in refused.value.errors
    with pytest.raises(BusinessRuleViolation) as refused:  # one active reservation per order
        billing.reserve_credit(**dict(call, reservation_id=rid()))
    assert refused.value.code == "CREDIT_ALREADY_RESERVED"

    over = dict(reservation_id=rid(), order_id=rid(), customer_id=customer["customer_id"], amount="400.01")
    for _ in range(2):
        with pytest.raises(BusinessRuleViolation) as refused:
            billing.reserve_credit(**over)
        assert refused.value.code == "CREDIT_LIMIT_EXCEEDED"
        assert refused.value.extra == {"limit": "1000.00", "exposure": "600.00", "requested": "400.01",
                                       "available": "400.00"}
    [held] = books.outbox("credit.held")  # once per reservation id
    assert held["data"]["order_id"] == over["order_id"] and held["data"]["owner_id"] == books.rep["staff_id"]
    assert books.value("SELECT count(*) FROM credit_reservations") == 1
    assert books.check_contracts() == {"credit_limit.changed", "credit.held"}
    with pytest.raises(ValidationFailed) as refused:
        billing.reserve_credit(reservation_id="x", order_id=rid(), customer_id=customer["customer_id"], amount=1.5)
    assert set(refused.value.errors) == {"reservation_id", "amount"}


def test_fr65_an_authorised_release_overrides_the_hold_and_records_who(books):
    billing = books.rpc.billing
    customer = books.customer()
    books.set_limit(customer, "1000.00")
    order = rid()
    held = dict(reservation_id=rid(), order_id=order, customer_id=customer["customer_id"], amount="1500.00")
    with pytest.raises(BusinessRuleViolation):
        billing.reserve_credit(**held)
    director = {"staff_id": rid(), "role": "sales_director", "username": "zhang.director", "team": None}
    with pytest.raises(Forbidden):
        billing.reserve_credit(**dict(held, override={"actor": books.rep, "reason": "good customer"}))
    with pytest.raises(ValidationFailed) as refused:
        billing.reserve_credit(**dict(held, override={"actor": director, "reason": " "}))
    assert "override.reason" in refused.value.errors
    released = billing.reserve_credit(**dict(held, override={"actor": director, "reason": "paid by acceptance bill"}))
    assert released["status"] == "reserved" and released["exposure"] == "1500.00"
    assert released["override"] == {"staff_id": director["staff_id"], "role": "sales_director",
                                    "username": "zhang.director", "reason": "paid by acceptance bill"}
    assert books.account(customer)["reservations"][0]["override"]["staff_id"] == director["staff_id"]

    # release on cancel: by the saga's call, and again by order.cancelled (a no-op by then)
    answer = billing.release_credit(order_id=order, reason="order cancelled by the customer")
    assert (answer["status"], answer["released"]) == ("released", "1500.00")
    assert billing.release_credit(order_id=order, reason="again")["released"] == "0.00"
    assert books.account(customer)["exposure"] == "0.00"
    # the same reservation id after a release answers released and reserves nothing
    assert billing.reserve_credit(**dict(held, override={"actor": director, "reason": "paid by acceptance bill"})
                                  )["status"] == "released"

    other = rid()
    billing.reserve_credit(reservation_id=rid(), order_id=other, customer_id=customer["customer_id"], amount="300")
    cancelled = books.publish("order", "order.cancelled", {"order_id": other, "number": "SO-2026-000009",
                                                           "reason": "customer withdrew"})
    books.applied(cancelled, "on_order_cancelled")
    assert books.value("SELECT release_reason FROM credit_reservations WHERE order_id = %s", other) \
        == "order cancelled: customer withdrew"
    assert books.account(customer)["exposure"] == "0.00"


def test_fr63_invoicing_turns_the_reservation_into_a_receivable(books):
    billing = books.rpc.billing
    customer = books.customer()
    books.set_limit(customer, "5000.00")
    order = rid()
    billing.reserve_credit(reservation_id=rid(), order_id=order, customer_id=customer["customer_id"],
                           amount="1000.00")
    delivery = books.goods_issued(customer, [("SKU-A", 6, "100.00", "0.13")], order_id=order)
    books.invoice([delivery])
    account = books.account(customer)
    assert (account["open_receivables"], account["reserved"], account["exposure"]) == ("600.00", "400.00", "1000.00")
    rest = books.goods_issued(customer, [("SKU-A", 5, "100.00", "0.13")], order_id=order)
    books.invoice([rest])
    account = books.account(customer)
    assert (account["open_receivables"], account["reserved"], account["exposure"]) == ("1100.00", "0.00", "1100.00")
    assert books.value("SELECT status FROM credit_reservations WHERE order_id = %s", order) == "consumed"
    assert account["available"] == "3900.00"


def test_fr66_manual_limit_by_finance_with_a_reason_kept_in_the_history(books):
    billing = books.rpc.billing
    customer = books.customer()
    call = dict(customer_id=customer["customer_id"], limit="50000.00", reason="bank guarantee received")
    for role in ("sales_manager", "sales_director", "sales_rep", "general_manager"):
        with pytest.raises(Forbidden):
            billing.set_credit_limit(request_id=rid(), actor={"staff_id": rid(), "role": role}, **call)
    for reason in (None, "", "   "):
        with pytest.raises(ValidationFailed) as refused:
            billing.set_credit_limit(request_id=rid(), actor=books.finance, **dict(call, reason=reason))
        assert list(refused.value.errors) == ["reason"]
    with pytest.raises(ValidationFailed) as refused:
        billing.set_credit_limit(request_id=rid(), actor=books.finance, **dict(call, limit="-1"))
    assert list(refused.value.errors) == ["limit"]
    assert books.account(customer)["limit"] == "0.00" and len(books.account(customer)["history"]) == 1
    assert books.outbox("credit_limit.changed") == []

    account = billing.set_credit_limit(request_id=rid(), actor=books.finance, **call)
    assert account["limit"] == account["manual_limit"] == "50000.00"
    assert account["manual_quarter"] == domain.quarter_of(local_date(datetime.now(timezone.utc)))
    entry = account["history"][-1]
    assert (entry["kind"], entry["old_limit"], entry["new_limit"], entry["reason"], entry["changed_by"]) == (
        "manual", "0.00", "50000.00", "bank guarantee received", books.finance["staff_id"])
    billing.set_credit_limit(request_id=rid(), actor=books.finance, **call)  # the same limit again: no new line
    assert len(books.account(customer)["history"]) == 2
    [event] = books.outbox("credit_limit.changed")
    assert event["data"]["kind"] == "manual" and event["data"]["new_limit"] == "50000.00"


def next_quarter_start(today):
    start = domain.parse_quarter(domain.quarter_of(today))
    return domain.add_months(start, 3)


def test_fr64_fr66_quarterly_recompute_from_sales_payments_and_growth(books, container_factory, billing_config):
    from billing.service import BillingService

    billing = books.rpc.billing
    today = local_date(datetime.now(timezone.utc))
    quarter_start = next_quarter_start(today)
    steady, newcomer, adjusted = books.customer(), books.customer(), books.customer()

    # steady: 800 000 invoiced a year before the last twelve months (paid on time, long ago),
    # 1 200 000 in them, paid 10 days late → grade B, growth 50 % → 2 × 100 000 × 1.0 × 1.25
    prior = books.invoice([books.goods_issued(steady, [("SKU-A", 8000, "100.00", "0.13")])])
    books.backdate("invoices", prior["id"], 465, "issued_at", "due_date")
    recent = books.invoice([books.goods_issued(steady, [("SKU-A", 12000, "100.00", "0.13")])])
    books.backdate("invoices", recent["id"], 60, "issued_at", "due_date")
    due = books.value("SELECT due_date FROM invoices WHERE id = %s", recent["id"])
    prior_due = books.value("SELECT due_date FROM invoices WHERE id = %s", prior["id"])
    books.allocate(books.receipt(steady, "1200000.00", received_at=(due + timedelta(days=10)).isoformat()),
                   [(recent, "1200000.00")])
    books.allocate(books.receipt(steady, "800000.00", received_at=prior_due.isoformat()), [(prior, "800000.00")])
    books.set_limit(adjusted, "30000.00", reason="trial period")

    # the current quarter first: finance's limit stands for it; the others have no record yet
    current = billing.run_credit_recompute(as_of=today.isoformat())
    assert current["finished"] and current["accounts"] == 3
    assert books.account(adjusted)["limit"] == "30000.00"

    # two replicas run the next quarter's job at once: each account is computed once
    container_factory(BillingService, billing_config).start()
    runs = [billing.run_credit_recompute.call_async(as_of=quarter_start.isoformat()) for _ in range(4)]
    results = [r.result() for r in runs]
    # one run for the quarter; whichever replica ends last marks it finished (the others may answer
    # before it does, having found every remaining account locked by another replica)
    assert {r["run_id"] for r in results} == {results[0]["run_id"]} and any(r["finished"] for r in results)
    run = books.sql("SELECT * FROM credit_recompute_runs WHERE id = %s", results[0]["run_id"])[0]
    assert run["finished_at"] is not None and run["accounts"] == 3
    account = books.account(steady)
    assert (account["limit"], account["grade"], account["formula_quarter"]) == (
        "250000.00", "B", domain.quarter_of(quarter_start))
    inputs = account["formula_inputs"]
    assert (inputs["sales_12m"], inputs["sales_prior_12m"], inputs["average_days_late"], inputs["growth_factor"]) \
        == ("1200000.00", "800000.00", "10.0", "1.2500")
    assert account["history"][-1]["kind"] == "formula" and "grade B" in account["history"][-1]["reason"]
    assert books.account(newcomer)["limit"] == "0.00" and books.account(newcomer)["grade"] == "C"
    lapsed = books.account(adjusted)
    assert lapsed["limit"] == "0.00" and "has lapsed" in lapsed["history"][-1]["reason"]
    assert billing.run_credit_recompute(as_of=quarter_start.isoformat())["changed"] == run["changed"] == 2
    changed = [e["data"] for e in books.outbox("credit_limit.changed") if e["data"]["kind"] == "formula"]
    assert {(c["customer_id"], c["new_limit"]) for c in changed} >= {(steady["customer_id"], "250000.00"),
                                                                       (adjusted["customer_id"], "0.00")}
    assert books.check_contracts() >= {"credit_limit.changed", "invoice.issued", "receipt.allocated"}


def test_fr66_recompute_on_demand_by_finance_for_a_started_quarter(books):
    billing = books.rpc.billing
    today = local_date(datetime.now(timezone.utc))
    books.customer()
    quarter = domain.quarter_of(today)
    with pytest.raises(Forbidden):
        billing.recompute_credit(request_id=rid(), actor=books.manager, quarter=quarter)
    with pytest.raises(ValidationFailed) as refused:
        billing.recompute_credit(request_id=rid(), actor=books.finance,
                                 quarter=domain.quarter_of(next_quarter_start(today)))
    assert "quarter" in refused.value.errors
    with pytest.raises(ValidationFailed):
        billing.recompute_credit(request_id=rid(), actor=books.finance, quarter="2026-Q5")
    key = rid()
    first = billing.recompute_credit(request_id=key, actor=books.finance, quarter=quarter)
    assert first["trigger"] == "manual" and first["finished"] and first["accounts"] == 1
    assert billing.recompute_credit(request_id=key, actor=books.finance, quarter=quarter) == first
    again = billing.recompute_credit(request_id=rid(), actor=books.finance, quarter=quarter)
    assert again["run_id"] != first["run_id"] and again["accounts"] == 1  # on demand: every account again
    assert date.fromisoformat(today.isoformat())  # as_of accepts dates and datetimes
    assert billing.run_credit_recompute(as_of=datetime.now(timezone.utc).isoformat())["quarter"] == quarter
    with pytest.raises(ValidationFailed):
        billing.run_credit_recompute(as_of="someday")


def test_fr66_the_quarterly_timer_reviews_a_quarter_once_however_many_replicas_run_it(
        container_factory, service_config, db_name, db_connect, wait_for):
    from billing.service import BillingService

    config = service_config(db_name)  # the schedule on, as deployed: each replica's timer fires at start
    for _ in range(2):
        container_factory(BillingService, config).start()
    conn = db_connect(db_name)
    quarter = domain.quarter_of(local_date(datetime.now(timezone.utc)))

    def finished():
        with conn.cursor() as cur:
            cur.execute("SELECT trigger, finished_at FROM credit_recompute_runs WHERE quarter = %s", (quarter,))
            return cur.fetchall()
    rows = wait_for(lambda: (lambda r: r if r and r[0]["finished_at"] else None)(finished()), what="the review")
    assert [r["trigger"] for r in rows] == ["scheduled"]


def actor(role, team=None):
    return {"staff_id": rid(), "role": role, "username": role, "team": team}


SUMMARY = ("customer_id", "limit", "currency", "grade", "exposure", "open_receivables", "reserved", "available")


def test_the_credit_summary_answers_the_accounts_figures_and_its_refusals(books):
    """get_credit_summary (the customer overview's part) answers get_credit_account's figures for
    every caller, and refuses exactly where it does — someone else's customer, a customer billing
    does not know, one without an account — without the reservations and history."""
    billing = books.rpc.billing
    customer = books.customer()
    books.set_limit(customer, "5000.00")
    order = rid()
    billing.reserve_credit(reservation_id=rid(), order_id=order, customer_id=customer["customer_id"], amount="1000.00")
    billing.reserve_credit(reservation_id=rid(), order_id=rid(), customer_id=customer["customer_id"], amount="250.50")
    books.invoice([books.goods_issued(customer, [("SKU-A", 6, "100.00", "0.13")], order_id=order)])
    other_rep = actor("sales_rep", books.team)
    for who in (books.rep, books.manager, books.finance, books.order_desk, other_rep, actor("sales_rep", "West-9")):
        try:
            account = billing.get_credit_account(actor=who, customer_id=customer["customer_id"])
        except NotFound as exc:
            with pytest.raises(NotFound) as refused:
                billing.get_credit_summary(actor=who, customer_id=customer["customer_id"])
            assert (refused.value.code, refused.value.detail) == (exc.code, exc.detail), who
            continue
        summary = billing.get_credit_summary(actor=who, customer_id=customer["customer_id"])
        assert summary == {k: account[k] for k in SUMMARY}, who
    summary = billing.get_credit_summary(actor=books.rep, customer_id=customer["customer_id"])
    assert (summary["open_receivables"], summary["reserved"], summary["exposure"], summary["available"]) \
        == ("600.00", "650.50", "1250.50", "3749.50")
    with pytest.raises(NotFound):  # another rep's customer: not found, as get_credit_account says
        billing.get_credit_summary(actor=other_rep, customer_id=customer["customer_id"])

    # an account billing has no copy of the customer for: only an unrestricted caller sees it
    orphan = rid()
    books.sql("INSERT INTO credit_accounts (customer_id, credit_limit, grade) VALUES (%s, 800, 'B')", orphan)
    assert billing.get_credit_summary(actor=books.finance, customer_id=orphan) == {
        "customer_id": orphan, "limit": "800.00", "currency": "CNY", "grade": "B", "exposure": "0.00",
        "open_receivables": "0.00", "reserved": "0.00", "available": "800.00"}
    for who, customer_id in ((books.rep, orphan), (books.finance, rid())):
        with pytest.raises(NotFound) as refused:
            billing.get_credit_summary(actor=who, customer_id=customer_id)
        assert refused.value.detail == f"customer {customer_id} not found"
    # a customer billing knows without an account (the account opens with customer.created)
    bare = rid()
    books.sql("INSERT INTO customers (customer_id, owner_id, owner_team) VALUES (%s, %s, %s)", bare,
              books.rep["staff_id"], books.team)
    with pytest.raises(NotFound) as refused:
        billing.get_credit_summary(actor=books.rep, customer_id=bare)
    assert refused.value.detail == f"no credit account for customer {bare}"
    with pytest.raises(ValidationFailed) as refused:
        billing.get_credit_summary(actor=books.rep, customer_id="not-a-uuid")
    assert "customer_id" in refused.value.errors
