"""API.md "Auth": tokens, API keys, roles, the admin bootstrap (real PostgreSQL and RabbitMQ)."""
import hashlib
import uuid

import pytest

from shared.config import ConfigError

CUSTOMERS = "api/v1/customers"


def test_api_auth_no_credential_is_401_with_www_authenticate(gateway):
    answer = gateway.get(CUSTOMERS)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    body = answer.json()
    assert body["code"] == "UNAUTHORIZED" and body["status"] == 401
    assert {"type", "title", "status", "detail", "code"} <= set(body)


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer sk_unknown"])
def test_api_auth_invalid_credential_is_401(gateway, authorization):
    answer = gateway.get(CUSTOMERS, headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert answer.json()["code"] == "INVALID_TOKEN"
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_api_auth_expired_or_forged_token_is_401(gateway, make_login, gateway_db):
    import jwt

    from gateway import auth
    from gateway.settings import Settings

    _, _, staff_id = make_login("sales_rep")
    with gateway_db.cursor() as cur:
        cur.execute("SELECT id, staff_id, role, username FROM credentials WHERE staff_id = %s", (staff_id,))
        row = cur.fetchone()
    settings = Settings(token_secret=gateway.config["GATEWAY"]["TOKEN_SECRET"], token_ttl=-10,
                        admin_username="admin", admin_password="", idempotency_ttl=1,
                        idempotency_lock_timeout=1, max_body_bytes=1)
    expired = auth.issue_token(settings, row)["access_token"]
    answer = gateway.get("api/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]
    forged = jwt.encode({"sub": staff_id, "cid": str(row["id"]), "role": "admin", "iat": 1, "exp": 2 ** 40,
                         "iss": auth.ISSUER}, "another-secret-of-enough-length-0123456789", algorithm="HS256")
    assert gateway.get("api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_api_auth_token_login_works_and_wrong_password_is_401(gateway, make_login):
    username, password, staff_id = make_login("sales_rep")
    answer = gateway.post("api/v1/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 200
    token = answer.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600
    me = gateway.get("api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json() == {"staff_id": staff_id, "username": username, "role": "sales_rep",
                         "display_name": username.title(), "credential": "password"}

    wrong = gateway.post("api/v1/auth/token", json={"username": username, "password": "not-it"})
    unknown = gateway.post("api/v1/auth/token", json={"username": "nobody-here", "password": "not-it"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()  # the same answer: usernames cannot be probed
    assert wrong.json()["code"] == "INVALID_CREDENTIALS"


def test_api_auth_disabled_login_cannot_log_in(gateway, make_login):
    username, password, _ = make_login("sales_rep", active=False)
    answer = gateway.post("api/v1/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 401


def test_api_auth_wrong_role_is_403(gateway, token_for):
    warehouse = gateway.get(CUSTOMERS, headers=token_for("warehouse"))
    assert warehouse.status_code == 403
    assert warehouse.json()["code"] == "FORBIDDEN"
    rep = gateway.post("api/v1/users", headers=token_for("sales_rep"), json={})
    assert rep.status_code == 403  # authorization comes before the body is even read
    assert gateway.get("api/v1/api-keys", headers=token_for("finance")).status_code == 403


def test_api_auth_public_paths_need_no_credential(gateway):
    for path in ("health", "metrics", "docs", "api/v1/openapi.json"):
        assert gateway.get(path).status_code == 200, path


def test_api_users_admin_creates_a_user_recorded_in_the_org_chart(gateway, token_for, upstream):
    admin = token_for("admin")
    body = {"username": "rep-new", "password": "long-enough-pw", "role": "sales_rep",
            "display_name": "Zhang Wei", "team": "East-1", "region": "East China",
            "manager": "6f1c1f0e-6d3b-4b7c-9a55-3d1f0b2a9c10"}
    answer = gateway.post("api/v1/users", json=body, headers=dict(admin, **{"Idempotency-Key": "user-1"}))
    assert answer.status_code == 201, answer.text
    user = answer.json()
    assert user["username"] == "rep-new" and user["role"] == "sales_rep" and user["manager"] == body["manager"]
    assert "password" not in user
    [call] = upstream.of("create_staff")
    assert call["staff"]["id"] == user["staff_id"] and call["staff"]["manager_id"] == body["manager"]
    assert call["actor"]["role"] == "admin"

    login = gateway.post("api/v1/auth/token", json={"username": "rep-new", "password": "long-enough-pw"})
    assert login.status_code == 200

    again = gateway.post("api/v1/users", json=dict(body, display_name="Other"), headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "USERNAME_TAKEN"

    short = gateway.post("api/v1/users", json=dict(body, username="rep-x", password="short"), headers=admin)
    assert short.status_code == 422 and "password" in short.json()["errors"]


def test_api_lists_users_page_by_cursor(gateway, token_for, make_login):
    admin = token_for("admin")
    for _ in range(3):
        make_login("sales_rep")
    first = gateway.get("api/v1/users", params={"limit": 2}, headers=admin).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = gateway.get("api/v1/users", params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin).json()
    assert len(second["items"]) == 2 and second["next_cursor"] is None
    names = [u["username"] for u in first["items"] + second["items"]]
    assert len(set(names)) == 4
    bad = gateway.get("api/v1/users", params={"limit": 500}, headers=admin)
    assert bad.status_code == 422 and "limit" in bad.json()["errors"]


def test_api_keys_shown_once_stored_hashed_and_usable(gateway, token_for, gateway_db, upstream):
    admin = dict(token_for("admin"), **{"Idempotency-Key": "key-1"})
    answer = gateway.post("api/v1/api-keys", json={"name": "ERP sync", "role": "integration"}, headers=admin)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    key = created["key"]
    assert key.startswith("sk_") and created["role"] == "integration"
    assert upstream.of("create_staff")[0]["staff"]["id"] == created["staff_id"]

    with gateway_db.cursor() as cur:
        cur.execute("SELECT secret_hash FROM credentials WHERE id = %s", (created["id"],))
        assert cur.fetchone()["secret_hash"] == hashlib.sha256(key.encode()).hexdigest()
        cur.execute("SELECT count(*) AS n FROM idempotency_records WHERE response_body LIKE %s", (f"%{key}%",))
        assert cur.fetchone()["n"] == 0  # the key is not kept even for replays

    listed = gateway.get("api/v1/api-keys", headers=admin).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]

    me = gateway.get("api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["role"] == "integration" and me.json()["credential"] == "api_key"
    replay = gateway.post("api/v1/api-keys", json={"name": "ERP sync", "role": "integration"}, headers=admin)
    assert replay.status_code == 201 and replay.json()["id"] == created["id"] and replay.json()["key"] is None
    assert len(upstream.of("create_staff")) == 1


def test_admin_bootstrap_creates_the_login_and_records_the_staff_member(start_gateway, upstream, gateway_db,
                                                                       wait_for):
    session = start_gateway(GATEWAY={"ADMIN_USERNAME": "root", "ADMIN_PASSWORD": "bootstrap-pw-123"})
    answer = session.post("api/v1/auth/token", json={"username": "root", "password": "bootstrap-pw-123"})
    assert answer.status_code == 200
    staff_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "sales-platform:staff:root"))
    assert wait_for(lambda: upstream.of("create_staff"))
    call = upstream.of("create_staff")[0]
    assert call["request_id"] == staff_id
    assert call["staff"] == {"id": staff_id, "username": "root", "display_name": "Administrator", "role": "admin"}

    def recorded():
        with gateway_db.cursor() as cur:
            cur.execute("SELECT staff_recorded FROM credentials WHERE username = 'root'")
            return cur.fetchone()["staff_recorded"]

    assert wait_for(recorded)


def test_admin_bootstrap_does_not_wait_for_the_customer_service(start_gateway, wait_for):
    session = start_gateway(customer=False, GATEWAY={"ADMIN_PASSWORD": "bootstrap-pw-123"})
    answer = session.post("api/v1/auth/token", json={"username": "admin", "password": "bootstrap-pw-123"})
    assert answer.status_code == 200


def test_config_without_token_secret_fails_fast(container_factory, gateway_config):
    from gateway.service import GatewayService

    container = container_factory(GatewayService, gateway_config(GATEWAY={"TOKEN_SECRET": ""}))
    with pytest.raises(ConfigError, match="TOKEN_SECRET"):
        container.start()
