"""Classification with history (FR-13, `signed` from the first order.confirmed), purchase history
(FR-17) and the customer review that makes a customer quotable (FR-14)."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.events import event_dispatcher
from prometheus_client import REGISTRY

from shared import envelope
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed


def test_fr13_classification_is_kept_with_history_and_published(crm):
    manager, (rep,) = crm.team(reps=1)
    customer = crm.customer(rep)
    crm.rpc.classify_customer(request_id=crm.rid(), actor=rep, customer_id=customer["id"], status="progressing",
                              reason="asked for a quote")
    crm.rpc.classify_customer(request_id=crm.rid(), actor=rep, customer_id=customer["id"], status="key")
    same = crm.rpc.classify_customer(request_id=crm.rid(), actor=rep, customer_id=customer["id"], status="key")
    assert same["status"] == "key"
    history = crm.rpc.list_classifications(actor=manager, customer_id=customer["id"])["items"]
    assert [(h["previous_status"], h["status"], h["source"]) for h in history] == [
        (None, "potential", "recorded"), ("potential", "progressing", "manual"), ("progressing", "key", "manual")]
    assert history[1]["reason"] == "asked for a quote" and history[1]["changed_by"] == rep["staff_id"]
    events = crm.outbox("customer.classified")
    assert [(e["data"]["previous_status"], e["data"]["status"]) for e in events] == \
        [("potential", "progressing"), ("progressing", "key")]


def test_fr13_a_rep_may_not_set_signed_and_nothing_changes(crm):
    manager, (rep,) = crm.team(reps=1)
    customer = crm.customer(rep, status="loi_signed")
    with pytest.raises(Forbidden) as info:
        crm.rpc.classify_customer(request_id=crm.rid(), actor=rep, customer_id=customer["id"], status="signed")
    assert info.value.code == "CLASSIFICATION_FORBIDDEN"
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.classify_customer(request_id=crm.rid(), actor=rep, customer_id=customer["id"], status="hot")
    assert "status" in info.value.errors
    assert crm.rpc.get_customer(actor=rep, customer_id=customer["id"])["status"] == "loi_signed"
    assert crm.outbox("customer.classified") == []
    signed = crm.rpc.classify_customer(request_id=crm.rid(), actor=manager, customer_id=customer["id"],
                                       status="signed", reason="framework contract signed on paper")
    assert signed["status"] == "signed"  # FR-13: the manager may set any class


RETRIED = {"service": "customer", "handler": "customer.on_order_confirmed"}


def order_confirmed(customer_id, number, total="11300.00", order_id=None):
    return envelope.build("order.confirmed", {
        "order_id": order_id or str(uuid.uuid4()), "number": number, "customer_id": customer_id,
        "owner_id": None, "owner_team": None, "region": "East", "total": total,
        "confirmed_at": datetime.now(timezone.utc).isoformat(), "something_new": {"ignored": True},
        "lines": [{"line_id": str(uuid.uuid4()), "sku": "CNC-100", "quantity": 2, "unit_price": "5650.00",
                   "vat_rate": "0.13"}]}, source="order")


def test_fr13_fr17_the_first_confirmed_order_signs_the_customer_and_every_order_is_history(crm):
    rep = crm.staff()
    customer = crm.customer(rep, status="loi_signed")
    dispatch = event_dispatcher()
    first = order_confirmed(customer["id"], "SO-2026-000001")
    dispatch("order", "order.confirmed", first)
    dispatch("order", "order.confirmed", first)  # delivered twice: applied once (inbox)
    dispatch("order", "order.confirmed", order_confirmed(customer["id"], "SO-2026-000002", total="500.00"))
    crm.wait_until(lambda: crm.scalar("SELECT count(*) FROM purchases") == 2)
    crm.wait_until(lambda: crm.scalar("SELECT count(*) FROM inbox") == 2)
    got = crm.rpc.get_customer(actor=rep, customer_id=customer["id"])
    assert got["status"] == "signed" and got["first_order_at"] is not None
    purchases = crm.rpc.list_purchases(actor=rep, customer_id=customer["id"])["items"]
    assert {p["order_number"] for p in purchases} == {"SO-2026-000001", "SO-2026-000002"}
    assert purchases[0]["lines"][0]["sku"] == "CNC-100"
    [event] = crm.outbox("customer.classified")  # signed once, by the first order only
    assert (event["data"]["previous_status"], event["data"]["status"], event["data"]["source"]) == \
        ("loi_signed", "signed", "order")
    assert event["data"]["order_id"] == first["data"]["order_id"]
    assert event["causation_id"] == first["event_id"]


def test_fr17_many_orders_of_one_customer_confirmed_at_once_are_all_history_none_parked(crm):
    """Handlers for one customer run side by side: they must queue on the customer, not deadlock
    (a deadlock retried past its attempts would park the event)."""
    rep = crm.staff()
    customer = crm.customer(rep)
    dispatch = event_dispatcher()
    retries = REGISTRY.get_sample_value("sales_message_retries_total", RETRIED) or 0
    for n in range(40):
        dispatch("order", "order.confirmed", order_confirmed(customer["id"], f"SO-2026-{n + 1:06d}"))
    crm.wait_until(lambda: crm.scalar("SELECT count(*) FROM inbox") == 40, timeout=30)
    assert crm.scalar("SELECT count(*) FROM purchases") == 40
    assert crm.scalar("SELECT count(*) FROM failed_messages") == 0
    assert crm.rpc.get_customer(actor=rep, customer_id=customer["id"])["status"] == "signed"
    assert len(crm.outbox("customer.classified")) == 1
    # not saved by retries: no handler had to be retried (a deadlock is retried as transient)
    assert (REGISTRY.get_sample_value("sales_message_retries_total", RETRIED) or 0) == retries


def test_fr17_an_order_event_it_cannot_read_is_parked_not_lost(crm):
    dispatch = event_dispatcher()
    bad = envelope.build("order.confirmed", {"order_id": str(uuid.uuid4()), "number": "SO-X"}, source="order")
    dispatch("order", "order.confirmed", bad)
    crm.wait_until(lambda: crm.scalar("SELECT count(*) FROM failed_messages") == 1)
    assert crm.scalar("SELECT count(*) FROM purchases") == 0


def test_fr14_a_review_approved_by_the_product_manager_makes_the_customer_quotable(crm):
    manager, (rep,) = crm.team(reps=1)
    pm = crm.staff("product_manager")
    customer = crm.customer(rep)
    assert crm.rpc.check_quotable(customer_id=customer["id"]) == {
        "customer_id": customer["id"], "quotable": False, "reason": "the customer has no approved review",
        "review": None}
    valid_until = crm.today() + timedelta(days=180)
    review = crm.rpc.submit_review(request_id=crm.rid(), actor=rep, customer_id=customer["id"], review={
        "business_status": "operating", "credit_opinion": "pays within 30 days; registered capital 5M",
        "valid_until": valid_until.isoformat()})
    assert review["state"] == "submitted"
    with pytest.raises(Conflict) as info:  # one review waits at a time
        crm.rpc.submit_review(request_id=crm.rid(), actor=rep, customer_id=customer["id"], review={
            "business_status": "operating", "credit_opinion": "again", "valid_until": valid_until.isoformat()})
    assert info.value.code == "REVIEW_PENDING"
    for actor in (rep, manager):  # FR-14: only the product manager approves
        with pytest.raises(Forbidden) as info:
            crm.rpc.approve_review(request_id=crm.rid(), actor=actor, customer_id=customer["id"],
                                   review_id=review["id"])
        assert info.value.code == "REVIEW_APPROVAL_FORBIDDEN"
    assert crm.rpc.check_quotable(customer_id=customer["id"])["quotable"] is False
    approved = crm.rpc.approve_review(request_id=crm.rid(), actor=pm, customer_id=customer["id"],
                                      review_id=review["id"], comment="ok")
    assert (approved["state"], approved["decided_by"]) == ("approved", pm["staff_id"])
    quotable = crm.rpc.check_quotable(customer_id=customer["id"])
    assert quotable["quotable"] is True and quotable["review"]["id"] == review["id"]
    later = crm.rpc.check_quotable(customer_id=customer["id"],
                                   as_of=(valid_until + timedelta(days=1)).isoformat())
    assert later["quotable"] is False and "expired" in later["reason"]
    [event] = crm.outbox("customer.reviewed")
    assert (event["data"]["outcome"], event["data"]["owner_id"]) == ("approved", rep["staff_id"])
    with pytest.raises(Conflict) as info:
        crm.rpc.approve_review(request_id=crm.rid(), actor=pm, customer_id=customer["id"], review_id=review["id"])
    assert info.value.code == "INVALID_STATE"


def test_fr14_bad_reviews_are_refused_and_a_rejection_needs_a_comment(crm):
    rep, other = crm.staff(), crm.staff()
    pm = crm.staff("product_manager")
    customer = crm.customer(rep)
    for review, field in (({"business_status": "operating", "credit_opinion": "fine",
                            "valid_until": (crm.today() - timedelta(days=1)).isoformat()}, "valid_until"),
                          ({"business_status": "thriving", "credit_opinion": "fine",
                            "valid_until": crm.today().isoformat()}, "business_status"),
                          ({"business_status": "operating", "valid_until": crm.today().isoformat()},
                           "credit_opinion")):
        with pytest.raises(ValidationFailed) as info:
            crm.rpc.submit_review(request_id=crm.rid(), actor=rep, customer_id=customer["id"], review=review)
        assert field in info.value.errors
    with pytest.raises(NotFound):  # someone else's customer
        crm.rpc.submit_review(request_id=crm.rid(), actor=other, customer_id=customer["id"], review={
            "business_status": "operating", "credit_opinion": "x", "valid_until": crm.today().isoformat()})
    review = crm.rpc.submit_review(request_id=crm.rid(), actor=rep, customer_id=customer["id"], review={
        "business_status": "suspended", "credit_opinion": "licence suspended",
        "valid_until": crm.today().isoformat()})
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.reject_review(request_id=crm.rid(), actor=pm, customer_id=customer["id"], review_id=review["id"],
                              comment="")
    assert "comment" in info.value.errors
    with pytest.raises(NotFound):  # the review of another customer
        crm.rpc.reject_review(request_id=crm.rid(), actor=pm, customer_id=crm.customer(rep)["id"],
                              review_id=review["id"], comment="no")
    rejected = crm.rpc.reject_review(request_id=crm.rid(), actor=pm, customer_id=customer["id"],
                                     review_id=review["id"], comment="suspended licence")
    assert rejected["state"] == "rejected"
    assert crm.rpc.check_quotable(customer_id=customer["id"])["quotable"] is False
    assert [r["state"] for r in crm.rpc.list_reviews(actor=rep, customer_id=customer["id"])["items"]] == ["rejected"]


def test_fr17_order_handlers_queue_on_the_customer_row_without_blocking_its_other_writes(crm, db_name):
    """The lock the order.confirmed handler takes first: a second handler for the same customer
    waits for it (so the two cannot deadlock on the purchases' foreign key), while other writes
    that reference the customer (a contact) go on."""
    import psycopg2

    from customer.db import CustomerRepository
    from shared import db as kit_db
    from shared.testing.plugin import pg_settings

    customer = crm.customer(crm.staff())
    settings = {k: v for k, v in pg_settings().items() if v is not None}
    pool = kit_db.Pool("customer-test", 2, dbname=db_name, **settings)
    try:
        with pool.transaction() as first:
            assert str(CustomerRepository(first).lock(customer["id"])) == customer["id"]
            with pool.transaction() as second:
                second.execute("SET LOCAL lock_timeout = '300ms'")
                second.execute("INSERT INTO contacts (id, customer_id, name) VALUES (%s, %s, 'Li Wei')",
                               (str(uuid.uuid4()), customer["id"]))  # not blocked by the handler's lock
                with pytest.raises(psycopg2.errors.LockNotAvailable):
                    CustomerRepository(second).lock(customer["id"])  # the next handler waits its turn
    finally:
        pool.close()
