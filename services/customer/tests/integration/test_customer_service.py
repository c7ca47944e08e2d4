"""The customer service against real PostgreSQL and RabbitMQ (FR-01, FR-02, FR-06, FR-07, FR-10)."""
import json
import uuid

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcClient

from customer.service import CustomerService
from shared.errors import Conflict, NotFound, ValidationFailed

MIGRATIONS = "services/customer/migrations"


@pytest.fixture
def db_name(make_database):
    return make_database(MIGRATIONS)


@pytest.fixture
def customer_rpc(container_factory, service_config, db_name):
    container = container_factory(CustomerService, service_config(db_name))
    container.start()
    with ClusterRpcClient(timeout=10) as client:
        yield client.customer


def staff(customer_rpc, role="sales_rep", name=None):
    name = name or f"user-{uuid.uuid4().hex[:6]}"
    admin = {"staff_id": str(uuid.uuid4()), "role": "admin"}
    row = customer_rpc.create_staff(request_id=str(uuid.uuid4()), actor=admin,
                                    staff={"username": name, "display_name": name.title(), "role": role})
    return {"staff_id": row["id"], "role": role, "username": name}


def new_customer(**over):
    data = {"name": f"Acme {uuid.uuid4().hex[:6]} Co., Ltd.", "industry": "machinery", "size": "medium",
            "region": "East", "source": "trade_fair", "contacts": [
                {"name": "Li Wei", "position": "purchasing head", "decision_maker": True}]}
    data.update(over)
    return data


def test_fr06_recorder_owns_new_customer_and_contact_is_due_in_a_week(customer_rpc):
    rep = staff(customer_rpc)
    created = customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=rep, customer=new_customer())
    assert created["owner_id"] == rep["staff_id"]
    assert created["number"].startswith("CUS-")
    assert created["contacts"][0]["decision_maker"] is True  # FR-15
    assert created["contact_due_by"] is not None
    assert customer_rpc.get_customer(actor=rep, customer_id=created["id"])["id"] == created["id"]


def test_fr07_duplicate_name_or_tax_id_is_refused_naming_the_owner(customer_rpc):
    first, second = staff(customer_rpc), staff(customer_rpc)
    data = new_customer(tax_id="91310000MA1FL8XQ3K")
    customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=first, customer=data)
    for dup in (dict(data, tax_id=None, name=data["name"].upper().replace("CO., LTD.", "有限公司")),
                dict(data, name="Entirely Other Name", tax_id="91310000ma1fl8xq3k")):
        with pytest.raises(Conflict) as info:
            customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=second, customer=dup)
        assert info.value.code == "DUPLICATE_CUSTOMER"
        assert info.value.extra["owner_id"] == first["staff_id"]
        assert info.value.extra["owner_name"]


def test_fr07_concurrent_claims_only_the_first_wins(customer_rpc):
    reps = [staff(customer_rpc) for _ in range(6)]
    data = new_customer()
    results = []

    def claim(rep):
        try:
            results.append(customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=rep, customer=data))
        except Conflict as exc:
            results.append(exc)

    pool = eventlet.GreenPool()
    for rep in reps:
        pool.spawn(claim, rep)
    pool.waitall()
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert all(r.extra["owner_id"] == winners[0]["owner_id"] for r in results if isinstance(r, Conflict))


def test_create_customer_is_idempotent_by_request_id(customer_rpc, db_connect, db_name):
    rep = staff(customer_rpc)
    request_id = str(uuid.uuid4())
    data = new_customer()
    one = customer_rpc.create_customer(request_id=request_id, actor=rep, customer=data)
    two = customer_rpc.create_customer(request_id=request_id, actor=rep, customer=data)
    assert one == two
    cur = db_connect(db_name).cursor()
    cur.execute("SELECT count(*) AS n FROM customers")
    assert cur.fetchone()["n"] == 1
    cur.execute("SELECT count(*) AS n FROM outbox WHERE event_type = 'customer.created'")
    assert cur.fetchone()["n"] == 1
    with pytest.raises(ValidationFailed) as info:  # same request id, other request
        customer_rpc.create_customer(request_id=request_id, actor=rep, customer=new_customer())
    assert info.value.code == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("field,value", [
    ("source", "cold_call"),        # FR-02: only the enumerated channels
    ("size", "huge"),               # FR-12
    ("status", "hot"),              # FR-13
    ("tax_id", "12-34"),
    ("name", ""),
    ("colour", "red"),              # unknown fields are refused, never stored
])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(customer_rpc, db_connect, db_name, field, value):
    rep = staff(customer_rpc)
    with pytest.raises(ValidationFailed) as info:
        customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=rep, customer=new_customer(**{field: value}))
    assert field in info.value.errors
    cur = db_connect(db_name).cursor()
    cur.execute("SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM outbox"
                " WHERE event_type = 'customer.created') AS n")
    assert cur.fetchone()["n"] == 0


def test_rep_sees_only_own_customers_and_others_answer_not_found(customer_rpc):
    mine, theirs = staff(customer_rpc), staff(customer_rpc)
    director = staff(customer_rpc, role="sales_director")
    a = customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=mine, customer=new_customer())
    b = customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=theirs, customer=new_customer())
    with pytest.raises(NotFound):
        customer_rpc.get_customer(actor=mine, customer_id=b["id"])
    assert [c["id"] for c in customer_rpc.list_customers(actor=mine)["items"]] == [a["id"]]
    assert {c["id"] for c in customer_rpc.list_customers(actor=director)["items"]} == {a["id"], b["id"]}


def test_list_pages_with_an_opaque_cursor(customer_rpc):
    director = staff(customer_rpc, role="sales_director")
    made = [customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=director,
                                         customer=new_customer())["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        page = customer_rpc.list_customers(actor=director, limit=2, cursor=cursor)
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    with pytest.raises(ValidationFailed) as info:
        customer_rpc.list_customers(actor=director, cursor="garbage")
    assert "cursor" in info.value.errors
    with pytest.raises(ValidationFailed):
        customer_rpc.list_customers(actor=director, limit=500)


def test_customer_created_is_written_to_the_outbox_and_published(customer_rpc, db_connect, db_name):
    rep = staff(customer_rpc)
    created = customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=rep, customer=new_customer())
    cur = db_connect(db_name).cursor()
    for _ in range(50):
        cur.execute("SELECT payload, published_at FROM outbox WHERE event_type = 'customer.created'")
        row = cur.fetchone()
        if row["published_at"]:
            break
        eventlet.sleep(0.1)
    assert row["published_at"] is not None
    assert row["payload"]["data"]["customer_id"] == created["id"]
    assert row["payload"]["source"] == "customer"


def test_published_events_match_their_contracts(customer_rpc, db_connect, db_name):
    from shared.testing.contracts import assert_matches_contract

    rep = staff(customer_rpc)
    customer_rpc.create_customer(request_id=str(uuid.uuid4()), actor=rep, customer=new_customer(tax_id="91310000MA1FL8XQ3K"))
    cur = db_connect(db_name).cursor()
    cur.execute("SELECT payload FROM outbox ORDER BY id")
    sent = [row["payload"] for row in cur.fetchall()]
    assert {e["event_type"] for e in sent} == {"staff.created", "customer.created"}
    for event in sent:
        assert_matches_contract("customer", event)
