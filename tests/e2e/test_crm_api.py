"""The CRM endpoints over HTTP with the real customer service behind the gateway (both in
containers in this process: real RabbitMQ vhost, real PostgreSQL databases): roles, validation
naming the field, row-level 404s, pagination, and logins following the org chart (PATCH /users →
customer.update_staff → staff.updated → the gateway's credentials)."""
import uuid
from datetime import date, datetime, timedelta, timezone

import eventlet
import pytest


class Api:
    def __init__(self, session):
        self.session = session

    def login(self, username, password):
        answer = self.session.post("api/v1/auth/token", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return Caller(self.session, {"Authorization": f"Bearer {answer.json()['access_token']}"})


class Caller:
    def __init__(self, session, headers):
        self.session = session
        self.headers = headers

    def call(self, method, path, body=None, expect=None, **kwargs):
        headers = dict(self.headers)
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        answer = self.session.request(method, "api/v1/" + path, json=body, headers=headers, **kwargs)
        if expect is not None:
            assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
            return answer.json()
        return answer

    def get(self, path, expect=None, **kwargs):
        return self.call("GET", path, expect=expect, **kwargs)

    def post(self, path, body=None, expect=None):
        return self.call("POST", path, body if body is not None else {}, expect)

    def patch(self, path, body, expect=None):
        return self.call("PATCH", path, body, expect)

    def put(self, path, body, expect=None):
        return self.call("PUT", path, body, expect)


@pytest.fixture
def crm_api(container_factory, service_config, make_database, web_session):
    """The customer service and the gateway in containers; returns (Api, admin Caller, user maker)."""
    from customer.service import CustomerService
    from gateway.service import GatewayService

    container_factory(CustomerService, service_config(make_database("services/customer/migrations"))).start()
    admin_password = "admin-" + uuid.uuid4().hex
    cfg = service_config(make_database("gateway/migrations", prefix="test_gateway"), GATEWAY={
        "TOKEN_SECRET": "t" * 48, "TOKEN_TTL": 3600, "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD": admin_password})
    container_factory(GatewayService, cfg).start()
    api = Api(web_session(f"http://{cfg['WEB_SERVER_ADDRESS']}/"))
    admin = api.login("admin", admin_password)

    def user(role, **fields):
        username = f"{role.replace('_', '')}{uuid.uuid4().hex[:6]}"
        body = dict({"username": username, "password": "pass-word-1", "role": role,
                     "display_name": username.title()}, **fields)
        for _ in range(100):  # the admin's own staff record is made in the background at start
            answer = admin.post("users", body)
            if answer.status_code != 503:
                break
            eventlet.sleep(0.1)
        assert answer.status_code == 201, answer.text
        return api.login(username, "pass-word-1"), answer.json()

    return api, admin, user


def customer_body(**over):
    body = {"name": f"Hengli {uuid.uuid4().hex[:8]} Co., Ltd.", "industry": "machinery", "size": "medium",
            "region": "East China", "source": "trade_fair"}
    body.update(over)
    return body


def test_api_crm_roles_validation_row_level_and_pages(crm_api):
    api, admin, user = crm_api
    manager, manager_user = user("sales_manager", team="East-1")
    rep, rep_user = user("sales_rep", team="East-1", manager=manager_user["staff_id"])
    other, other_user = user("sales_rep", team="East-1", manager=manager_user["staff_id"])
    pm, _ = user("product_manager")
    warehouse, _ = user("warehouse")

    made = [rep.post("customers", customer_body(), expect=201) for _ in range(3)]
    customer = made[0]
    assert warehouse.get("customers").status_code == 403

    # pages of 2 through an opaque cursor, newest first
    first = rep.get("customers", params={"limit": 2}, expect=200)
    rest = rep.get("customers", params={"limit": 2, "cursor": first["next_cursor"]}, expect=200)
    assert [c["id"] for c in first["items"] + rest["items"]] == [c["id"] for c in reversed(made)]
    assert rest["next_cursor"] is None

    # the other rep sees none of it: 404 everywhere, an empty list
    for path in (f"customers/{customer['id']}", f"customers/{customer['id']}/owner-history",
                 f"customers/{customer['id']}/contacts", f"customers/{customer['id']}/purchases"):
        assert other.get(path).status_code == 404, path
    assert other.get("customers", expect=200)["items"] == []

    # a rep may not reassign (403 at the gateway); a manager must give the reason (422 naming it)
    move = {"owner": other_user["staff_id"], "reason": "rebalancing"}
    assert rep.post(f"customers/{customer['id']}/owner", move).status_code == 403
    refused = manager.post(f"customers/{customer['id']}/owner", dict(move, reason=""))
    assert refused.status_code == 422 and "reason" in refused.json()["errors"]
    moved = manager.post(f"customers/{customer['id']}/owner", move, expect=200)
    assert moved["owner_id"] == other_user["staff_id"]
    history = other.get(f"customers/{customer['id']}/owner-history", expect=200)["items"]
    assert [h["kind"] for h in history] == ["claim", "override"] and history[1]["reason"] == "rebalancing"
    assert rep.get(f"customers/{customer['id']}").status_code == 404

    # the class has its own command (PATCH refuses it, naming the field); signed is not a rep's to set
    own = made[1]
    patched = rep.patch(f"customers/{own['id']}", {"status": "key"})
    assert patched.status_code == 422 and "status" in patched.json()["errors"]
    assert rep.patch(f"customers/{own['id']}", {"problems": "late deliveries"}, expect=200)["problems"] == \
        "late deliveries"
    assert rep.post(f"customers/{own['id']}/classification", {"status": "signed"}).status_code == 403
    assert rep.post(f"customers/{own['id']}/classification", {"status": "key"}, expect=200)["status"] == "key"

    # follow-ups and the review the product manager approves (FR-14)
    rep.post(f"customers/{own['id']}/follow-ups", {"channel": "phone", "summary": "brochure arrived",
             "occurred_at": datetime.now(timezone.utc).isoformat()}, expect=201)
    assert len(rep.get(f"customers/{own['id']}/follow-ups", expect=200)["items"]) == 1
    review = rep.post(f"customers/{own['id']}/reviews", {
        "business_status": "operating", "credit_opinion": "pays on time",
        "valid_until": (date.today() + timedelta(days=90)).isoformat()}, expect=201)
    assert rep.post(f"customers/{own['id']}/reviews/{review['id']}/approve", {}).status_code == 403
    approved = pm.post(f"customers/{own['id']}/reviews/{review['id']}/approve", {"comment": "ok"}, expect=200)
    assert approved["state"] == "approved"

    # inputs the service would take wrongly are refused at the door, naming the field
    naive = rep.post("visits", {"customer_id": own["id"], "planned_at": "2026-12-01T10:00:00", "purpose": "x"})
    assert naive.status_code == 422 and "planned_at" in naive.json()["errors"]
    cents = rep.post("opportunities", {"customer_id": own["id"], "title": "x", "expected_amount": "1.234",
                                       "probability": 10})
    assert cents.status_code == 422 and "expected_amount" in cents.json()["errors"]
    bad_filter = rep.get("visits", params={"from": "yesterday"})
    assert bad_filter.status_code == 422 and "from" in bad_filter.json()["errors"]
    assert rep.get("customers/pool").status_code == 403
    assert manager.get("customers/pool", expect=200)["items"] == []


def test_api_users_patch_and_the_login_follows_the_org_chart(crm_api):
    api, admin, user = crm_api
    manager, manager_user = user("sales_manager", team="East-1")
    rep, rep_user = user("sales_rep", team="East-1", manager=manager_user["staff_id"])
    assert rep.get("customers/pool").status_code == 403
    admin.put("territories/EAST", {"name": "East China", "kind": "market"}, expect=200)
    changed = admin.patch(f"users/{rep_user['staff_id']}", {
        "role": "sales_manager", "team": "East-2", "territory": "EAST", "capacity": "1.50",
        "discount_authority": "0.08"}, expect=200)
    assert (changed["role"], changed["team"], changed["discount_authority"], changed["price_authority"]) == \
        ("sales_manager", "East-2", "0.08", "0.80")
    deadline = eventlet.hubs.get_hub().clock() + 15
    while rep.get("customers/pool").status_code != 200:  # staff.updated reaches the gateway
        assert eventlet.hubs.get_hub().clock() < deadline, "the login did not follow the org chart"
        eventlet.sleep(0.1)
    assert rep.get("me", expect=200)["role"] == "sales_manager"
    staff = admin.get("staff", params={"team": "East-2"}, expect=200)["items"]
    assert [s["id"] for s in staff] == [rep_user["staff_id"]] and staff[0]["territory"] == "EAST"
    assert [t["code"] for t in rep.get("territories", expect=200)["items"]] == ["EAST"]
    bad = admin.patch(f"users/{rep_user['staff_id']}", {"manager": rep_user["staff_id"]})
    assert bad.status_code == 422 and "manager_id" in bad.json()["errors"]
    assert manager.patch(f"users/{rep_user['staff_id']}", {"active": False}).status_code == 403
    admin.patch(f"users/{rep_user['staff_id']}", {"active": False}, expect=200)
    deadline = eventlet.hubs.get_hub().clock() + 15
    while rep.get("me").status_code != 401:  # left the company: the login stops working
        assert eventlet.hubs.get_hub().clock() < deadline, "the login still works"
        eventlet.sleep(0.1)


def test_api_proposal_loop_and_tender_over_http(crm_api):
    """FR-40 and FR-41 through the gateway: roles, the field named on bad input, row-level 404s."""
    api, admin, user = crm_api
    manager, manager_user = user("sales_manager", team="East-2")
    rep, rep_user = user("sales_rep", team="East-2", manager=manager_user["staff_id"])
    other, _ = user("sales_rep", team="East-2", manager=manager_user["staff_id"])
    warehouse, _ = user("warehouse")
    customer = rep.post("customers", customer_body(), expect=201)
    opp = rep.post("opportunities", {"customer_id": customer["id"], "title": "Line 2", "expected_amount": "90000.00",
                                     "probability": 30, "priority": "high"}, expect=201)
    rep.patch(f"opportunities/{opp['id']}", {"stage": "qualified"}, expect=200)
    bad = rep.post("proposals", {"opportunity_id": opp["id"], "title": "Line 2", "content": "scope",
                                 "kind": "tender"})
    assert bad.status_code == 422 and "closes_at" in bad.json()["errors"], bad.text
    closes_at = (datetime.now(timezone.utc) + timedelta(days=5)).isoformat()
    tender = rep.post("proposals", {"opportunity_id": opp["id"], "title": "Line 2 tender", "content": "scope",
                                    "amount": "88000.00", "kind": "tender", "closes_at": closes_at}, expect=201)
    assert (tender["state"], tender["revision"], tender["kind"]) == ("draft", 1, "tender")
    assert other.get(f"proposals/{tender['id']}").status_code == 404  # another rep cannot learn it exists
    assert warehouse.get("proposals").status_code == 403
    assert rep.post(f"proposals/{tender['id']}/send").status_code == 409  # not reviewed yet
    rep.post(f"proposals/{tender['id']}/submit", expect=200)
    assert rep.post(f"proposals/{tender['id']}/approve", {}).status_code == 403  # reps do not review
    waiting = manager.get("proposals?state=internal_review", expect=200)["items"]
    assert [p["id"] for p in waiting] == [tender["id"]]
    inbox = manager.get("me/approvals", expect=200)  # the order service is not running here: partial
    assert [(i["kind"], i["id"], i["decide"]) for i in inbox["items"]] == \
        [("proposal", tender["id"], f"proposals/{tender['id']}")]
    manager.post(f"proposals/{tender['id']}/approve", {"comment": "ok"}, expect=200)
    sent = rep.post(f"proposals/{tender['id']}/send", expect=200)
    assert sent["state"] == "submitted"
    assert rep.get(f"opportunities/{opp['id']}", expect=200)["stage"] == "proposal"
    no_reason = rep.post(f"proposals/{tender['id']}/response", {"outcome": "rejected"})
    assert no_reason.status_code == 422 and "comment" in no_reason.json()["errors"], no_reason.text
    declined = rep.post(f"proposals/{tender['id']}/response", {"outcome": "rejected", "comment": "too dear"},
                        expect=200)
    revised = rep.patch(f"proposals/{declined['id']}", {"amount": "84000.00"}, expect=200)
    assert (revised["state"], revised["revision"], revised["amount"]) == ("draft", 2, "84000.00")
    assert [s["action"] for s in rep.get(f"proposals/{tender['id']}", expect=200)["steps"]] == \
        ["create", "submit", "approve", "send", "decline", "revise"]


def test_api_escalation_and_guidance_over_http(crm_api):
    """FR-28 and FR-30 through the gateway: the owner escalates, the manager guides, others see nothing."""
    api, admin, user = crm_api
    manager, manager_user = user("sales_manager", team="East-3")
    rep, rep_user = user("sales_rep", team="East-3", manager=manager_user["staff_id"])
    other, _ = user("sales_rep", team="East-3", manager=manager_user["staff_id"])
    customer = rep.post("customers", customer_body(), expect=201)
    assert manager.post(f"customers/{customer['id']}/escalations", {"reason": "hard"}).status_code == 403
    missing = rep.post(f"customers/{customer['id']}/escalations", {})
    assert missing.status_code == 422 and "reason" in missing.json()["errors"], missing.text
    escalation = rep.post(f"customers/{customer['id']}/escalations", {"reason": "tender committee"}, expect=201)
    again = rep.post(f"customers/{customer['id']}/escalations", {"reason": "again"})
    assert again.status_code == 409 and again.json()["code"] == "ESCALATION_OPEN", again.text
    assert other.get(f"escalations/{escalation['id']}").status_code == 404
    assert [e["id"] for e in manager.get("escalations?state=open", expect=200)["items"]] == [escalation["id"]]
    guided = manager.post(f"escalations/{escalation['id']}/notes", {"note": "I join on Thursday"}, expect=200)
    assert (guided["state"], guided["notes"][0]["kind"]) == ("guided", "guidance")
    closed = rep.post(f"escalations/{escalation['id']}/close", {"outcome": "LOI signed"}, expect=200)
    assert closed["state"] == "closed"


def test_api_weekly_collection_check_over_http(crm_api):
    """FR-05 through the gateway: the rep submits the week's records, the manager returns, then checks."""
    api, admin, user = crm_api
    manager, manager_user = user("sales_manager", team="East-4")
    rep, rep_user = user("sales_rep", team="East-4", manager=manager_user["staff_id"])
    other, _ = user("sales_rep", team="East-4", manager=manager_user["staff_id"])
    rep.post("customers", customer_body(), expect=201)
    bad = rep.post("collections", {"week": "48"})
    assert bad.status_code == 422 and "week" in bad.json()["errors"], bad.text
    week = rep.post("collections", {}, expect=201)
    assert (week["state"], week["records"], len(week["customers"])) == ("submitted", 1, 1)
    assert rep.post("collections", {}).status_code == 409
    assert other.get(f"collections/{week['id']}").status_code == 404
    assert rep.post(f"collections/{week['id']}/check", {"outcome": "checked"}).status_code == 403
    no_comment = manager.post(f"collections/{week['id']}/check", {"outcome": "returned"})
    assert no_comment.status_code == 422 and "comment" in no_comment.json()["errors"], no_comment.text
    manager.post(f"collections/{week['id']}/check", {"outcome": "returned", "comment": "add positions"}, expect=200)
    assert rep.post("collections", {}, expect=201)["state"] == "submitted"
    assert manager.post(f"collections/{week['id']}/check", {"outcome": "checked"}, expect=200)["state"] == "checked"


def test_api_market_intelligence_over_http(crm_api):
    """FR-33 through the gateway: a problem from the field is escalated to the manager, who answers it."""
    api, admin, user = crm_api
    manager, manager_user = user("sales_manager", team="East-5")
    rep, rep_user = user("sales_rep", team="East-5", manager=manager_user["staff_id"])
    other, _ = user("sales_rep", team="East-5", manager=manager_user["staff_id"])
    bad = rep.post("intelligence", {"kind": "gossip", "summary": "x"})
    assert bad.status_code == 422 and "kind" in bad.json()["errors"], bad.text
    problem = rep.post("intelligence", {"kind": "problem", "summary": "deliveries late"}, expect=201)
    assert problem["urgent"] and problem["response_due_by"]
    assert other.get(f"intelligence/{problem['id']}").status_code == 404
    assert rep.post(f"intelligence/{problem['id']}/acknowledge", {"response": "ok"}).status_code == 403
    waiting = manager.get("intelligence?state=reported&urgent=true", expect=200)["items"]
    assert [r["id"] for r in waiting] == [problem["id"]]
    answered = manager.post(f"intelligence/{problem['id']}/acknowledge", {"response": "raised with logistics"},
                            expect=200)
    assert answered["state"] == "acknowledged"


def test_api_logistics_sheet_over_http(crm_api):
    """FR-18 through the gateway: the order desk keeps the shipping sheet; the due list follows it."""
    api, admin, user = crm_api
    rep, _ = user("sales_rep", team="East-6")
    other, _ = user("sales_rep", team="East-6")
    desk, _ = user("order_desk")
    customer = rep.post("customers", customer_body(), expect=201)
    bad = desk.put(f"customers/{customer['id']}/logistics", {"address": "88 Gongye Rd"})
    assert bad.status_code == 422 and "consignee" in bad.json()["errors"], bad.text
    assert customer["id"] in {c["customer_id"] for c in desk.get("logistics/due?limit=200", expect=200)["items"]}
    sheet = desk.put(f"customers/{customer['id']}/logistics",
                     {"consignee": "Zhang Min", "address": "88 Gongye Rd, Suzhou", "carrier": "SF"}, expect=200)
    assert (sheet["due"], sheet["carrier"]) == (False, "SF")
    assert customer["id"] not in {c["customer_id"] for c in desk.get("logistics/due?limit=200", expect=200)["items"]}
    assert other.get(f"customers/{customer['id']}/logistics").status_code == 404
