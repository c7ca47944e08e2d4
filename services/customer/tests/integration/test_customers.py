"""The customer archive against real PostgreSQL and RabbitMQ: recording (FR-01, FR-02, FR-06, FR-12,
FR-15), the duplicate rule (FR-07), the profile (FR-16, FR-17), contacts, row-level access, lists."""
from datetime import timedelta

import eventlet
import psycopg2
import pytest
from nameko.standalone.rpc import ClusterRpcClient

from shared.errors import Conflict, NotFound, ValidationFailed


def test_fr06_recorder_owns_new_customer_and_contact_is_due_in_a_week(crm):
    rep = crm.staff(team="East-1")
    created = crm.customer(rep)
    assert created["owner_id"] == rep["staff_id"] and created["owner_team"] == "East-1"
    assert created["number"].startswith("CUS-")
    assert created["contacts"][0]["decision_maker"] is True  # FR-15
    assert created["contact_due_by"] is not None and created["reclaimable"] is False
    assert crm.rpc.get_customer(actor=rep, customer_id=created["id"])["id"] == created["id"]
    [claim] = crm.rpc.list_owner_history(actor=rep, customer_id=created["id"])["items"]
    assert (claim["kind"], claim["owner_id"], claim["source"]) == ("claim", rep["staff_id"], "trade_fair")


def test_fr04_a_record_entered_over_two_working_days_after_its_collection_is_flagged(crm):
    rep = crm.staff()
    late = crm.customer(rep, collected_at=(crm.now() - timedelta(days=10)).isoformat())
    fresh = crm.customer(rep, collected_at=(crm.now() - timedelta(hours=2)).isoformat())
    assert (late["late_entry"], fresh["late_entry"], crm.customer(rep)["late_entry"]) == (True, False, False)
    assert [c["id"] for c in crm.rpc.list_customers(actor=rep, filters={"late_entry": True})["items"]] == [late["id"]]
    assert [e["data"]["late_entry"] for e in crm.outbox("customer.created")] == [True, False, False]
    with pytest.raises(ValidationFailed) as info:
        crm.customer(rep, collected_at=(crm.now() + timedelta(days=1)).isoformat())
    assert "collected_at" in info.value.errors
    assert crm.scalar("SELECT count(*) FROM customers") == 3


def test_fr07_duplicate_name_or_tax_id_is_refused_naming_the_owner_and_the_claim_is_kept(crm):
    first, second = crm.staff(), crm.staff()
    data = crm.body(tax_id="91310000MA1FL8XQ3K")
    created = crm.rpc.create_customer(request_id=crm.rid(), actor=first, customer=data)
    for dup in (dict(data, tax_id=None, name=data["name"].upper().replace("CO., LTD.", "有限公司")),
                dict(data, name="Entirely Other Name", tax_id="91310000ma1fl8xq3k")):
        with pytest.raises(Conflict) as info:
            crm.rpc.create_customer(request_id=crm.rid(), actor=second, customer=dup)
        assert info.value.code == "DUPLICATE_CUSTOMER"
        assert info.value.extra["owner_id"] == first["staff_id"]
        assert info.value.extra["owner_name"] and info.value.extra["customer_number"] == created["number"]
    assert crm.scalar("SELECT count(*) FROM customers") == 1
    # the later claims are in the append-only ledger, after the first one (FR-07: provably first)
    history = crm.rpc.list_owner_history(actor=crm.ADMIN, customer_id=created["id"])["items"]
    assert [(h["kind"], h["owner_id"]) for h in history] == [
        ("claim", first["staff_id"]), ("claim_refused", second["staff_id"]), ("claim_refused", second["staff_id"])]
    assert history[1]["claimed_name"].endswith("有限公司")
    with pytest.raises(psycopg2.Error):
        crm.execute("UPDATE ownership_events SET owner_id = %s", (second["staff_id"],))
    with pytest.raises(psycopg2.Error):
        crm.execute("DELETE FROM ownership_events")


def test_fr07_concurrent_claims_only_the_first_wins(crm):
    reps = [crm.staff() for _ in range(6)]
    data = crm.body()
    results = []

    def claim(rep):
        with ClusterRpcClient(timeout=10) as client:  # one client per green thread: they are not shared
            try:
                results.append(client.customer.create_customer(request_id=crm.rid(), actor=rep, customer=data))
            except Conflict as exc:
                results.append(exc)

    pool = eventlet.GreenPool()
    for rep in reps:
        pool.spawn(claim, rep)
    pool.waitall()
    assert len(results) == 6
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert all(r.extra["owner_id"] == winners[0]["owner_id"] for r in results if isinstance(r, Conflict))


def test_create_customer_is_idempotent_by_request_id(crm):
    rep = crm.staff()
    request_id = crm.rid()
    data = crm.body()
    one = crm.rpc.create_customer(request_id=request_id, actor=rep, customer=data)
    two = crm.rpc.create_customer(request_id=request_id, actor=rep, customer=data)
    assert one == two
    assert crm.scalar("SELECT count(*) FROM customers") == 1
    assert len(crm.outbox("customer.created")) == 1
    with pytest.raises(ValidationFailed) as info:  # same request id, other request
        crm.rpc.create_customer(request_id=request_id, actor=rep, customer=crm.body())
    assert info.value.code == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("field,value", [
    ("source", "cold_call"),        # FR-02: only the enumerated channels
    ("size", "huge"),               # FR-12
    ("status", "hot"),              # FR-13
    ("tax_id", "12-34"),
    ("name", ""),
    ("bank_account", {"bank_name": "ICBC"}),
    ("colour", "red"),              # unknown fields are refused, never stored
])
def test_fr02_fr12_bad_input_is_refused_naming_the_field_and_changes_nothing(crm, field, value):
    rep = crm.staff()
    with pytest.raises(ValidationFailed) as info:
        crm.customer(rep, **{field: value})
    assert any(key.startswith(field) for key in info.value.errors), info.value.errors
    assert crm.scalar("SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM outbox"
                      " WHERE event_type = 'customer.created')") == 0


def test_fr01_fr16_fr17_profile_needs_problems_bank_details_and_customer_updated(crm):
    rep = crm.staff(team="East-1")
    created = crm.customer(rep, needs="CNC spare parts", problems="slow deliveries from the current supplier")
    assert created["needs"] == "CNC spare parts" and created["problems"].startswith("slow")
    changed = crm.rpc.update_customer(request_id=crm.rid(), actor=rep, customer_id=created["id"], changes={
        "tax_id": "91320500MA1MXX7L2K", "bank_account": {"bank_name": "ICBC Suzhou", "account_no": "1102 0206 0900"},
        "preferences": "quarterly framework orders", "region": "East China"})
    assert changed["tax_id"] == "91320500MA1MXX7L2K" and changed["bank_account"]["bank_name"] == "ICBC Suzhou"
    assert changed["version"] == created["version"] + 1
    [event] = crm.outbox("customer.updated")
    data = event["data"]
    assert data["changed"] == ["bank_account", "preferences", "region", "tax_id"]
    assert (data["region"], data["owner_id"], data["owner_team"]) == ("East China", rep["staff_id"], "East-1")
    # the same values again change nothing and publish nothing
    crm.rpc.update_customer(request_id=crm.rid(), actor=rep, customer_id=created["id"],
                            changes={"region": "East China"})
    assert len(crm.outbox("customer.updated")) == 1


def test_fr07_a_profile_change_keeps_the_duplicate_rule_and_refuses_what_it_cannot_change(crm):
    rep = crm.staff()
    first, second = crm.customer(rep, name="Alpha Trading"), crm.customer(rep, name="Beta Trading")
    with pytest.raises(Conflict) as info:
        crm.rpc.update_customer(request_id=crm.rid(), actor=rep, customer_id=second["id"],
                                changes={"name": "ALPHA trading co., ltd."})
    assert info.value.code == "DUPLICATE_CUSTOMER" and info.value.extra["customer_number"] == first["number"]
    for changes, field in (({"status": "key"}, "status"), ({"owner_id": rep["staff_id"]}, "owner_id"),
                           ({"source": "internet"}, "source"), ({}, "_schema")):
        with pytest.raises(ValidationFailed) as info:
            crm.rpc.update_customer(request_id=crm.rid(), actor=rep, customer_id=second["id"], changes=changes)
        assert field in info.value.errors
    assert crm.rpc.get_customer(actor=rep, customer_id=second["id"])["name"] == "Beta Trading"
    assert crm.outbox("customer.updated") == []


def test_fr15_contacts_with_position_and_decision_authority(crm):
    rep, other = crm.staff(), crm.staff()
    created = crm.customer(rep, contacts=[])
    for n in range(3):
        crm.rpc.add_contact(request_id=crm.rid(), actor=rep, customer_id=created["id"], contact={
            "name": f"Contact {n}", "position": "engineer", "decision_maker": n == 0, "email": f"c{n}@example.cn"})
    page = crm.rpc.list_contacts(actor=rep, customer_id=created["id"], limit=2)
    rest = crm.rpc.list_contacts(actor=rep, customer_id=created["id"], cursor=page["next_cursor"])
    assert [c["name"] for c in page["items"] + rest["items"]] == ["Contact 0", "Contact 1", "Contact 2"]
    assert page["items"][0]["decision_maker"] is True and rest["next_cursor"] is None
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.add_contact(request_id=crm.rid(), actor=rep, customer_id=created["id"],
                            contact={"name": "X", "email": "not-an-email"})
    assert "email" in info.value.errors
    with pytest.raises(NotFound):
        crm.rpc.add_contact(request_id=crm.rid(), actor=other, customer_id=created["id"], contact={"name": "X"})
    assert crm.scalar("SELECT count(*) FROM contacts") == 3


def test_row_level_rep_own_manager_team_and_pool_director_all(crm):
    east_manager, (mine, teammate) = crm.team("East-1")
    west_manager, (stranger,) = crm.team("West-1", reps=1)
    director, marketing = crm.staff("sales_director"), crm.staff("marketing_director")
    a, b, c = crm.customer(mine), crm.customer(teammate), crm.customer(stranger)
    lead = crm.customer(marketing)  # a campaign lead: in the pool
    assert lead["owner_id"] is None

    def seen(actor):
        return {row["id"] for row in crm.rpc.list_customers(actor=actor)["items"]}

    assert seen(mine) == {a["id"]}
    assert seen(east_manager) == {a["id"], b["id"], lead["id"]}
    assert seen(west_manager) == {c["id"], lead["id"]}
    assert seen(director) == {a["id"], b["id"], c["id"], lead["id"]}
    for actor, customer in ((mine, b), (mine, lead), (east_manager, c)):
        with pytest.raises(NotFound):  # someone else's record answers 404, not 403
            crm.rpc.get_customer(actor=actor, customer_id=customer["id"])
    # asking for another rep's customers by filter just finds none
    assert crm.rpc.list_customers(actor=mine, filters={"owner": teammate["staff_id"]})["items"] == []


def test_lists_filter_and_page_with_an_opaque_cursor(crm):
    director = crm.staff("sales_director", team="HQ")
    made = [crm.customer(director, name=f"Zeta {n} Trading", region="North" if n % 2 else "South")["id"]
            for n in range(5)]
    crm.customer(director, name="Omega Chemicals", industry="chemicals", tax_id="91110000MA00ABCD1X")
    seen, cursor = [], None
    while True:
        page = crm.rpc.list_customers(actor=director, filters={"q": "zeta"}, limit=2, cursor=cursor)
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))  # newest first, each once
    north = crm.rpc.list_customers(actor=director, filters={"region": "North"})["items"]
    assert len(north) == 2
    assert [c["name"] for c in crm.rpc.list_customers(actor=director, filters={"q": "ABCD1"})["items"]] == \
        ["Omega Chemicals"]  # q finds the tax id too
    assert len(crm.rpc.list_customers(actor=director, filters={"industry": "chemicals", "team": "HQ"})["items"]) == 1
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.list_customers(actor=director, cursor="garbage")
    assert "cursor" in info.value.errors
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.list_customers(actor=director, limit=500)
    assert "limit" in info.value.errors
    with pytest.raises(ValidationFailed) as info:
        crm.rpc.list_customers(actor=director, filters={"status": "hot"})
    assert "status" in info.value.errors


def test_customer_created_is_written_to_the_outbox_and_published(crm):
    rep = crm.staff(team="East-1")
    created = crm.customer(rep, bank_account={"bank_name": "ICBC", "account_no": "6222 0000 1111"})
    crm.wait_until(lambda: crm.scalar("SELECT count(*) FROM outbox WHERE event_type = 'customer.created'"
                                      " AND published_at IS NOT NULL") == 1)
    [event] = crm.outbox("customer.created")
    assert event["data"]["customer_id"] == created["id"] and event["source"] == "customer"
    assert event["data"]["owner_team"] == "East-1" and event["data"]["bank_account"]["bank_name"] == "ICBC"


def test_fr20_fr35_customers_without_regular_contact_are_listed(crm):
    """FR-20 (relationship kept by periodic contact) and FR-35 (the weekly contact of every customer):
    `quiet_days` lists the customers with no follow-up and no logged visit in that many days."""
    rep = crm.staff()
    desk = crm.staff("order_desk")
    called, quiet = crm.customer(rep), crm.customer(rep)
    crm.execute("UPDATE customers SET created_at = now() - interval '30 days' WHERE id IN (%s, %s)",
                (called["id"], quiet["id"]))
    crm.rpc.record_follow_up(request_id=crm.rid(), actor=rep, customer_id=called["id"], follow_up={
        "channel": "phone", "occurred_at": (crm.now() - timedelta(days=2)).isoformat(),
        "summary": "asked about the Q1 plan", "feedback": "happy with delivery times"})
    weekly = {c["id"] for c in crm.rpc.list_customers(actor=desk, filters={"quiet_days": 7})["items"]}
    assert quiet["id"] in weekly and called["id"] not in weekly
    everyone = {c["id"] for c in crm.rpc.list_customers(actor=desk, filters={"quiet_days": 1})["items"]}
    assert {quiet["id"], called["id"]} <= everyone
    for bad in (0, 400, "7"):
        with pytest.raises(ValidationFailed) as info:
            crm.rpc.list_customers(actor=rep, filters={"quiet_days": bad})
        assert "quiet_days" in info.value.errors
