"""Orders are placed from the order service's own copy of the customer (customer.created,
customer.owner_changed, customer.updated; DESIGN.md §1), without asking the customer service, when
that copy lets the caller see the customer; otherwise the customer service is asked and decides
(issue 11). The access rule stays the customer service's: a rep orders only for customers they
may see."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import NotFound

LINES = [{"sku": "P1", "quantity": 1}]


def created(desk, customer_id, owner, name="Copy Co", region="East", **envelope_fields):
    staff = desk.books.staff.get(owner["staff_id"]) if owner else None
    desk.deliver("customer", "customer.created", {
        "customer_id": customer_id, "number": "C-2026-000001", "name": name, "tax_id": None, "bank_account": None,
        "industry": "machinery", "size": "medium", "region": region, "source": "trade_fair", "status": "potential",
        "owner_id": owner["staff_id"] if owner else None, "owner_team": staff["team"] if staff else None,
        "collected_at": None, "late_entry": False, "created_at": datetime.now(timezone.utc).isoformat()},
        **envelope_fields)


def owner_changed(desk, customer_id, owner, **envelope_fields):
    team = desk.books.staff[owner["staff_id"]]["team"]
    desk.deliver("customer", "customer.owner_changed", {
        "customer_id": customer_id, "owner_id": owner["staff_id"], "owner_team": team, "region": "East",
        "previous_owner_id": None, "reason": "rebalanced", "kind": "override"}, **envelope_fields)


def reassign(books, customer_id, owner):
    """The customer service's own record (what get_customer answers) takes the new owner."""
    books.customers[customer_id].update(owner_id=owner["staff_id"], owner_team=books.staff[owner["staff_id"]]["team"])


def asked(books):
    return len(books.of("customer.get_customer"))


def test_an_order_is_placed_from_the_copy_without_asking_the_customer_service(desk, books):
    org = desk.org()
    created(desk, org.customer, org.rep, name="Copy Co", region="East")
    order = desk.order(org.rep, org.customer, LINES)
    assert asked(books) == 0
    assert (order["customer_id"], order["customer_name"], order["owner_id"], order["owner_team"], order["region"]) == (
        org.customer, "Copy Co", org.rep["staff_id"], "east-1", "East")
    # the same rule as the customer service's: the team's manager and the directors see it, another rep does not
    assert desk.order(org.manager, org.customer, LINES)["owner_id"] == org.rep["staff_id"]
    assert desk.order(org.director, org.customer, LINES)["owner_id"] == org.rep["staff_id"]
    assert asked(books) == 0
    with pytest.raises(NotFound):
        desk.order(org.other_rep, org.customer, LINES)
    assert asked(books) == 1  # the copy said no: the customer service was asked, and said no too
    with pytest.raises(NotFound):
        desk.order(org.west_manager, org.customer, LINES)


def test_a_reassigned_customer_is_ordered_for_by_its_new_owner_only(desk, books):
    org = desk.org()
    created(desk, org.customer, org.rep)
    reassign(books, org.customer, org.other_rep)
    owner_changed(desk, org.customer, org.other_rep)
    with pytest.raises(NotFound):
        desk.order(org.rep, org.customer, LINES)
    placed = desk.order(org.other_rep, org.customer, LINES)
    assert placed["owner_id"] == org.other_rep["staff_id"]
    assert [c["actor"]["staff_id"] for c in books.of("customer.get_customer")] == [org.rep["staff_id"]]


def test_a_copy_behind_a_reassignment_asks_and_the_customer_service_decides(desk, books):
    """The customer was given to other_rep and the event has not arrived yet: the copy says no,
    the customer service says yes, and the order takes the owner it answered (the event, when it
    comes, moves the order as it moves every document)."""
    org = desk.org()
    created(desk, org.customer, org.rep)
    reassign(books, org.customer, org.other_rep)
    placed = desk.order(org.other_rep, org.customer, LINES)
    assert asked(books) == 1 and placed["owner_id"] == org.other_rep["staff_id"]
    owner_changed(desk, org.customer, org.other_rep)
    assert desk.rpc.get_order(actor=org.other_rep, order_id=placed["id"])["owner_id"] == org.other_rep["staff_id"]
    desk.order(org.other_rep, org.customer, LINES)
    assert asked(books) == 1  # caught up: from the copy again


def test_an_event_landing_while_the_customer_service_is_asked_decides(desk, books):
    org = desk.org()
    created(desk, org.customer, org.rep)
    reassign(books, org.customer, org.other_rep)
    # the customer service says yes; meanwhile the reassignment's event lands: the order takes the copy's owner
    books.hooks["customer.get_customer"] = lambda: owner_changed(desk, org.customer, org.other_rep)
    placed = desk.order(org.other_rep, org.customer, LINES)
    assert placed["owner_id"] == org.other_rep["staff_id"]
    # the customer service says yes to other_rep; meanwhile a later reassignment (to the west) lands: refused
    desk.deliver("customer", "customer.owner_changed", {
        "customer_id": org.customer, "owner_id": org.rep["staff_id"], "owner_team": "east-1"})
    books.hooks["customer.get_customer"] = lambda: owner_changed(desk, org.customer, org.west_manager)
    with pytest.raises(NotFound):
        desk.order(org.other_rep, org.customer, LINES)
    assert desk.scalar("SELECT count(*) FROM orders WHERE created_by = %s", org.other_rep["staff_id"]) == 1


def test_a_customer_created_a_moment_ago_is_asked_for_until_its_event_arrives(desk, books):
    org = desk.org()
    first = desk.order(org.rep, org.customer, LINES)  # no copy yet
    assert asked(books) == 1 and first["owner_id"] == org.rep["staff_id"]
    with pytest.raises(NotFound):
        desk.order(org.other_rep, org.customer, LINES)
    created(desk, org.customer, org.rep, occurred_at=datetime.now(timezone.utc) - timedelta(seconds=5))
    second = desk.order(org.rep, org.customer, LINES)
    assert asked(books) == 2 and second["customer_name"] == "Copy Co"
    assert desk.rpc.get_order(actor=org.rep, order_id=first["id"])["owner_id"] == org.rep["staff_id"]


def test_events_out_of_order_keep_the_newest_owner_and_still_name_the_customer(desk, books):
    org = desk.org()
    owner_changed(desk, org.customer, org.other_rep)  # newer, but first
    with pytest.raises(NotFound):  # no name yet: the customer service is asked (and still has rep as owner)
        desk.order(org.other_rep, org.customer, LINES)
    created(desk, org.customer, org.rep, name="Late Name", occurred_at=datetime.now(timezone.utc) - timedelta(hours=1))
    placed = desk.order(org.other_rep, org.customer, LINES)
    assert (placed["owner_id"], placed["customer_name"]) == (org.other_rep["staff_id"], "Late Name")
    assert asked(books) == 1
    desk.deliver("customer", "customer.updated", {"customer_id": org.customer, "name": "New Name", "region": "North"})
    renamed = desk.order(org.other_rep, org.customer, LINES)
    assert (renamed["customer_name"], renamed["region"], renamed["owner_id"]) == (
        "New Name", "North", org.other_rep["staff_id"])


def test_an_unowned_customer_is_ordered_for_by_a_manager_not_by_a_rep(desk, books):
    org = desk.org()
    pool = str(uuid.uuid4())
    created(desk, pool, None, name="Pool Co")
    placed = desk.order(org.manager, pool, LINES)
    assert placed["owner_id"] is None and asked(books) == 0
    with pytest.raises(NotFound):
        desk.order(org.rep, pool, LINES)  # the customer service has no such customer for a rep either
    assert asked(books) == 1
