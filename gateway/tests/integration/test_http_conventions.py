"""API.md "Conventions" over real HTTP, PostgreSQL and RabbitMQ, with a fake customer service:
problem answers, request ids, Idempotency-Key, lists, upstream failures, the actor on every RPC."""
import json
import uuid

import eventlet
import requests

CUSTOMERS = "api/v1/customers"


def new_customer(**over):
    body = {"name": f"Acme {uuid.uuid4().hex[:6]} Co., Ltd.", "industry": "machinery", "size": "medium",
            "region": "East China", "source": "trade_fair",
            "contacts": [{"name": "Li Wei", "decision_maker": True}]}
    body.update(over)
    return body


# -- errors ----------------------------------------------------------------------------------
def test_api_errors_malformed_json_is_400(gateway, token_for, upstream):
    headers = dict(token_for("sales_rep"), **{"Content-Type": "application/json"})
    answer = gateway.post(CUSTOMERS, data='{"name": "Acme",', headers=headers)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["code"] == "MALFORMED_REQUEST"
    assert gateway.post(CUSTOMERS, data="", headers=headers).status_code == 400
    assert upstream.calls == []


def test_api_errors_unknown_field_is_422_naming_it(gateway, token_for, upstream):
    answer = gateway.post(CUSTOMERS, json=new_customer(colour="red"), headers=token_for("sales_rep"))
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "VALIDATION_FAILED"
    assert "colour" in body["errors"]
    assert upstream.calls == []


def test_api_errors_schema_failure_is_422_with_field_messages(gateway, token_for):
    body = new_customer(size="huge", tax_id="123", contacts=[{"decision_maker": "maybe"}])
    del body["industry"]
    answer = gateway.post(CUSTOMERS, json=body, headers=token_for("sales_rep"))
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert {"size", "tax_id", "industry", "contacts.0.name", "contacts.0.decision_maker"} <= set(errors)
    assert all(isinstance(messages, list) for messages in errors.values())


def test_api_errors_not_json_media_type_is_415(gateway, token_for):
    headers = dict(token_for("sales_rep"), **{"Content-Type": "text/plain"})
    assert gateway.post(CUSTOMERS, data="name=Acme", headers=headers).status_code == 415


def test_api_errors_unknown_route_is_404_and_wrong_method_405_as_problems(gateway, token_for):
    missing = gateway.get("api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json()["code"] == "NOT_FOUND"
    assert gateway.get("api/v1/customers/not-a-uuid", headers=token_for("sales_rep")).status_code == 404
    wrong = gateway.delete(CUSTOMERS)
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]


def test_api_errors_unexpected_upstream_error_is_a_500_that_leaks_nothing(gateway, token_for, upstream):
    upstream.mode = "crash"
    answer = gateway.post(CUSTOMERS, json=new_customer(), headers=token_for("sales_rep"))
    assert answer.status_code == 500
    body = answer.json()
    assert body["code"] == "INTERNAL_ERROR"
    assert "secret" not in answer.text and "ZeroDivision" not in answer.text


def test_fr07_duplicate_customer_is_409_naming_the_owner(gateway, token_for, upstream):
    upstream.mode = "duplicate"
    answer = gateway.post(CUSTOMERS, json=new_customer(), headers=token_for("sales_rep"))
    assert answer.status_code == 409
    body = answer.json()
    assert body["code"] == "DUPLICATE_CUSTOMER"
    assert body["owner_name"] == "Wang Fang" and body["owner_id"]
    assert body["type"].endswith("duplicate-customer") and body["title"]


# -- request ids -----------------------------------------------------------------------------
def test_api_request_id_is_echoed_and_follows_the_rpc(gateway, token_for, upstream):
    headers = token_for("sales_rep")
    mine = "req-" + uuid.uuid4().hex
    answer = gateway.post(CUSTOMERS, json=new_customer(), headers=dict(headers, **{"X-Request-Id": mine}))
    assert answer.status_code == 201
    assert answer.headers["X-Request-Id"] == mine
    assert upstream.of("create_customer")[0]["correlation_id"] == mine

    failed = gateway.get(CUSTOMERS, headers={"X-Request-Id": mine})  # errors carry it too
    assert failed.status_code == 401 and failed.headers["X-Request-Id"] == mine

    made_up = gateway.get("api/v1/openapi.json", headers={"X-Request-Id": "bad id\u00e9"}).headers["X-Request-Id"]
    assert str(uuid.UUID(made_up)) == made_up  # an unusable id is replaced by a fresh one


# -- customers and the actor -----------------------------------------------------------------
def test_api_create_customer_is_201_with_location_and_carries_the_actor(gateway, make_login, upstream):
    username, password, staff_id = make_login("sales_rep")
    token = gateway.post("api/v1/auth/token", json={"username": username, "password": password}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    answer = gateway.post(CUSTOMERS, json=new_customer(), headers=headers)
    assert answer.status_code == 201
    customer = answer.json()
    assert answer.headers["Location"] == f"/api/v1/customers/{customer['id']}"
    [call] = upstream.of("create_customer")
    assert call["actor"] == {"staff_id": staff_id, "role": "sales_rep", "username": username, "team": None}
    assert str(uuid.UUID(call["request_id"])) == call["request_id"]
    assert call["customer"]["contacts"] == [{"name": "Li Wei", "decision_maker": True}]

    gateway.get(CUSTOMERS, params={"owner": staff_id, "status": "key", "q": "acme", "limit": 10, "cursor": "abc"},
                headers=headers)
    [listed] = upstream.of("list_customers")
    assert listed["actor"]["staff_id"] == staff_id  # queries carry the actor too
    assert listed["filters"] == {"owner": staff_id, "status": "key", "q": "acme"}
    assert (listed["limit"], listed["cursor"]) == (10, "abc")

    missing = gateway.get(f"{CUSTOMERS}/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404 and upstream.of("get_customer")[0]["actor"]["staff_id"] == staff_id


def test_api_lists_take_limit_and_cursor_and_refuse_a_bad_limit(gateway, token_for, upstream):
    headers = token_for("sales_manager")
    page = gateway.get(CUSTOMERS, headers=headers)
    assert page.status_code == 200 and page.json() == {"items": [], "next_cursor": None}
    assert upstream.of("list_customers")[0]["limit"] == 50
    for bad in ("0", "201", "ten"):
        answer = gateway.get(CUSTOMERS, params={"limit": bad}, headers=headers)
        assert answer.status_code == 422 and "limit" in answer.json()["errors"], bad
    unknown = gateway.get(CUSTOMERS, params={"colour": "red"}, headers=headers)
    assert unknown.status_code == 422 and "colour" in unknown.json()["errors"]


# -- Idempotency-Key ---------------------------------------------------------------------------
def test_api_idempotency_replay_returns_the_first_answer_and_creates_nothing_twice(gateway, token_for, upstream):
    headers = dict(token_for("sales_rep"), **{"Idempotency-Key": "create-acme-1"})
    body = new_customer()
    first = gateway.post(CUSTOMERS, json=body, headers=headers)
    second = gateway.post(CUSTOMERS, data=json.dumps(body, indent=2),  # same JSON, other spacing
                          headers=dict(headers, **{"Content-Type": "application/json"}))
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(upstream.of("create_customer")) == 1

    other = gateway.post(CUSTOMERS, json=dict(body, name="Other"), headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(upstream.of("create_customer")) == 1

    fresh = gateway.post(CUSTOMERS, json=body, headers=dict(headers, **{"Idempotency-Key": "create-acme-2"}))
    assert fresh.status_code == 201 and len(upstream.of("create_customer")) == 2
    requests_ids = {call["request_id"] for call in upstream.of("create_customer")}
    assert len(requests_ids) == 2


def test_api_a_post_with_an_idempotency_key_costs_three_round_trips_to_the_database(start_gateway, token_for, upstream,
                                                                                   db_name):
    """Issue 11: the credential's lookup, the key's claim and the answer's record are one statement
    each, committed on its own. They were three transactions — BEGIN, SELECT, COMMIT; BEGIN, the
    DELETE of a stale record, the INSERT, COMMIT; BEGIN, UPDATE, COMMIT: ten round trips."""
    import psycopg2.extensions

    gateway = start_gateway(OUTBOX={"STATS_INTERVAL": 3600})  # no gauge refresh in the middle
    headers = dict(token_for("sales_rep", gateway), **{"Idempotency-Key": "count-1"})
    sent, wait = [], psycopg2.extensions.get_wait_callback()

    def counting(conn):  # called once for each command psycopg2 sends
        if conn.info.dbname == db_name:
            sent.append(conn)
        return wait(conn)

    body = new_customer()
    psycopg2.extensions.set_wait_callback(counting)
    try:
        answer = gateway.post(CUSTOMERS, json=body, headers=headers)
    finally:
        psycopg2.extensions.set_wait_callback(wait)
    assert answer.status_code == 201
    assert len(sent) == 3
    replay = gateway.post(CUSTOMERS, json=body, headers=headers)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert len(upstream.of("create_customer")) == 1


def test_api_idempotency_an_abandoned_or_expired_record_is_taken_over(gateway, token_for, upstream, gateway_db):
    """A key left in progress past the lock timeout (its worker crashed) or kept past its 24 h is
    claimed afresh by the next request with it: the command runs; a live one still answers 409."""
    from gateway.idempotency import request_hash

    headers = token_for("sales_rep")
    body = new_customer()
    first = gateway.post(CUSTOMERS, json=body, headers=dict(headers, **{"Idempotency-Key": "old-1"}))
    assert first.status_code == 201
    with gateway_db.cursor() as cur:
        cur.execute("SELECT credential_id FROM idempotency_records WHERE key = 'old-1'")
        credential_id = cur.fetchone()["credential_id"]
        cur.execute("UPDATE idempotency_records SET expires_at = now() - interval '1 second' WHERE key = 'old-1'")
        for key, age in (("stuck-1", "1 hour"), ("busy-2", "1 second")):
            cur.execute("INSERT INTO idempotency_records (credential_id, key, method, path, request_hash, created_at, "
                        "expires_at) VALUES (%s, %s, 'POST', '/api/v1/customers', %s, now() - %s::interval, "
                        "now() + interval '1 day')",
                        (credential_id, key, request_hash("POST", "/api/v1/customers", body), age))
    again = gateway.post(CUSTOMERS, json=dict(body, name="Acme Again"), headers=dict(headers, **{"Idempotency-Key": "old-1"}))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    stuck = gateway.post(CUSTOMERS, json=body, headers=dict(headers, **{"Idempotency-Key": "stuck-1"}))
    assert stuck.status_code == 201 and "Idempotent-Replayed" not in stuck.headers
    busy = gateway.post(CUSTOMERS, json=body, headers=dict(headers, **{"Idempotency-Key": "busy-2"}))
    assert busy.status_code == 409 and busy.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert len(upstream.of("create_customer")) == 3
    with gateway_db.cursor() as cur:
        cur.execute("SELECT key, status FROM idempotency_records WHERE key IN ('old-1', 'stuck-1') ORDER BY key")
        assert [(row["key"], row["status"]) for row in cur.fetchall()] == [("old-1", 201), ("stuck-1", 201)]


def test_api_idempotency_keys_are_scoped_to_the_credential(gateway, token_for, upstream):
    body = new_customer()
    for role in ("sales_rep", "sales_rep"):
        answer = gateway.post(CUSTOMERS, json=body, headers=dict(token_for(role), **{"Idempotency-Key": "k-1"}))
        assert answer.status_code == 201 and "Idempotent-Replayed" not in answer.headers
    assert len(upstream.of("create_customer")) == 2


def test_api_idempotency_replays_a_final_refusal_too(gateway, token_for, upstream):
    upstream.mode = "invalid"  # the input itself is wrong (422): retrying cannot change that
    headers = dict(token_for("sales_rep"), **{"Idempotency-Key": "bad-1"})
    body = new_customer()
    first = gateway.post(CUSTOMERS, json=body, headers=headers)
    second = gateway.post(CUSTOMERS, json=body, headers=headers)
    assert first.status_code == second.status_code == 422
    assert first.json() == second.json() and second.headers["Content-Type"] == "application/problem+json"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(upstream.of("create_customer")) == 1


def test_api_idempotency_keeps_no_not_now_refusal(gateway, token_for, upstream):
    """A 409 refuses for a state that can change: the key is released, a retry runs the command again
    (and, once the state allows it, succeeds), instead of replaying the stale refusal."""
    upstream.mode = "duplicate"
    headers = dict(token_for("sales_rep"), **{"Idempotency-Key": "dup-1"})
    body = new_customer()
    first = gateway.post(CUSTOMERS, json=body, headers=headers)
    second = gateway.post(CUSTOMERS, json=body, headers=headers)
    assert first.status_code == second.status_code == 409 and "Idempotent-Replayed" not in second.headers
    upstream.mode = "ok"
    third = gateway.post(CUSTOMERS, json=body, headers=headers)
    assert third.status_code == 201 and "Idempotent-Replayed" not in third.headers
    assert gateway.post(CUSTOMERS, json=body, headers=headers).headers["Idempotent-Replayed"] == "true"
    calls = upstream.of("create_customer")
    assert len(calls) == 3 and len({call["request_id"] for call in calls}) == 1  # the service dedups


def test_api_idempotency_concurrent_duplicate_is_409_in_use(gateway, token_for, upstream):
    upstream.mode = "block"
    headers = dict(token_for("sales_rep"), **{"Idempotency-Key": "slow-1"})
    body = new_customer()
    first = eventlet.spawn(requests.post, gateway.base + CUSTOMERS, json=body, headers=headers)
    upstream.entered.wait()
    second = gateway.post(CUSTOMERS, json=body, headers=headers)
    assert second.status_code == 409 and second.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
    upstream.release.send(True)
    assert first.wait().status_code == 201
    assert len(upstream.of("create_customer")) == 1


def test_api_a_retry_shortly_answer_is_not_kept_so_the_resend_runs_again(start_gateway, token_for, upstream):
    """A 409 that says "retry shortly" (a saga still running on the document, the warehouse not yet
    told of a confirmation) is not the request's outcome: kept, it would be replayed to every
    resend with the same Idempotency-Key and the request could never succeed (issue 9)."""
    gateway = start_gateway()
    upstream.mode = "busy"
    headers = dict(token_for("sales_rep", gateway), **{"Idempotency-Key": "busy-1"})
    body = new_customer()
    answer = gateway.post(CUSTOMERS, json=body, headers=headers)
    assert answer.status_code == 409 and answer.json()["code"] == "CONFIRMATION_IN_PROGRESS"
    upstream.mode = "ok"
    retry = gateway.post(CUSTOMERS, json=body, headers=headers)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert len(upstream.of("create_customer")) == 2


def test_api_upstream_timeout_is_504_and_a_retry_runs_again(start_gateway, token_for, upstream):
    gateway = start_gateway(RPC_TIMEOUT=0.3)
    upstream.mode, upstream.slow_for = "slow", 1.0
    headers = dict(token_for("sales_rep", gateway), **{"Idempotency-Key": "timeout-1"})
    body = new_customer()
    answer = gateway.post(CUSTOMERS, json=body, headers=headers)
    assert answer.status_code == 504
    assert answer.json()["code"] == "UPSTREAM_TIMEOUT"
    upstream.mode = "ok"
    retry = gateway.post(CUSTOMERS, json=body, headers=headers)  # a 5xx is not kept
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    calls = upstream.of("create_customer")
    assert len(calls) == 2 and calls[0]["request_id"] == calls[1]["request_id"]  # the service dedups


def test_api_no_customer_service_is_503(start_gateway, token_for):
    gateway = start_gateway(customer=False)
    answer = gateway.post(CUSTOMERS, json=new_customer(), headers=token_for("sales_rep", gateway))
    assert answer.status_code == 503
    assert answer.json()["code"] == "SERVICE_UNAVAILABLE"
    assert answer.headers["Retry-After"]
