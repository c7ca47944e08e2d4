"""A login follows its staff member in the org chart: the gateway consumes `staff.updated` from the
customer service (real RabbitMQ, real PostgreSQL) and updates role, team, display name and active
— newest version wins, a malformed event is parked, never lost."""
import uuid

from nameko.standalone.events import event_dispatcher

from shared import envelope


def staff_updated(staff_id, version, **fields):
    data = dict({"staff_id": staff_id, "username": "ignored", "display_name": "Wang Fang", "role": "sales_rep",
                 "manager_id": None, "team": "East-1", "region": "East", "active": True, "version": version,
                 "discount_authority": "0.05", "price_authority": "0.85", "a_field_from_later": 1}, **fields)
    return envelope.build("staff.updated", data, source="customer")


def credential(gateway_db, staff_id):
    with gateway_db.cursor() as cur:
        cur.execute("SELECT role, team, display_name, active, staff_version FROM credentials WHERE staff_id = %s",
                    (staff_id,))
        return cur.fetchone()


def test_api_users_a_login_follows_role_team_and_active_from_the_org_chart(gateway, make_login, wait_for,
                                                                             gateway_db):
    username, password, staff_id = make_login("sales_rep", team="East-1")
    token = gateway.post("api/v1/auth/token", json={"username": username, "password": password}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert gateway.get("api/v1/customers/pool", headers=headers).status_code == 403  # a rep has no pool

    dispatch = event_dispatcher()
    dispatch("customer", "staff.updated", staff_updated(staff_id, 2, role="sales_manager", team="East-2",
                                                        display_name="Wang Fang (manager)"))
    assert wait_for(lambda: credential(gateway_db, staff_id)["staff_version"] == 2)
    assert credential(gateway_db, staff_id) == {"role": "sales_manager", "team": "East-2",
                                                "display_name": "Wang Fang (manager)", "active": True,
                                                "staff_version": 2}
    me = gateway.get("api/v1/me", headers=headers).json()  # the same token, the new role at once
    assert (me["role"], me["display_name"]) == ("sales_manager", "Wang Fang (manager)")

    # a late event of an older version changes nothing
    dispatch("customer", "staff.updated", staff_updated(staff_id, 1, role="sales_rep", team="East-1"))
    dispatch("customer", "staff.updated", staff_updated(staff_id, 3, role="sales_manager", team="East-2",
                                                        active=False))
    assert wait_for(lambda: credential(gateway_db, staff_id)["staff_version"] == 3)
    assert credential(gateway_db, staff_id)["role"] == "sales_manager"
    # the person left: the token and the password stop working
    assert gateway.get("api/v1/me", headers=headers).status_code == 401
    again = gateway.post("api/v1/auth/token", json={"username": username, "password": password})
    assert again.status_code == 401


def test_api_users_a_staff_event_the_gateway_cannot_read_is_parked(gateway, make_login, wait_for, gateway_db):
    _, _, staff_id = make_login("sales_rep")
    event_dispatcher()("customer", "staff.updated", staff_updated(staff_id, 2, role="emperor"))
    assert wait_for(lambda: _parked(gateway_db) == 1)
    assert credential(gateway_db, staff_id)["role"] == "sales_rep"
    event_dispatcher()("customer", "staff.updated", staff_updated(str(uuid.uuid4()), 2))  # nobody's login: no-op
    assert wait_for(lambda: _applied(gateway_db) == 1)


def _parked(gateway_db):
    with gateway_db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM failed_messages WHERE handler = 'gateway.on_staff_updated'")
        return cur.fetchone()["n"]


def _applied(gateway_db):
    with gateway_db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM inbox WHERE handler = 'gateway.on_staff_updated'")
        return cur.fetchone()["n"]
