"""Issue 9, security: who may call what, with which credential, and what never leaks.

One platform (the five services and the gateway as real processes) for the whole module:
  * the role × endpoint matrix: every operation of the OpenAPI document the gateway serves, called
    by every role (API.md "Roles"); the roles tests/security/matrix.py lets through are not refused
    (no 401/403, no 5xx), every other role gets 403 FORBIDDEN. An operation without an entry fails;
  * no credential → 401 everywhere but health, readiness, metrics, the docs and the OpenAPI document;
  * tokens are HS256 (pinned: `none`, HS512 and a forged key are refused), expire, and carry no
    authority of their own (the role comes from the credential, not the token's claims);
  * passwords are stored as argon2 hashes and API keys as sha256 digests, never as themselves;
  * the request body (413) and the page size (limit ≤ 200, 422 naming `limit`) are capped on every
    list the document has;
  * schemathesis negative data for every operation, sent with a role allowed to call it, and
    hypothesis-made headers and bodies, never get a 5xx;
  * last, the logs of every process of the run hold no password, token, API key or token secret.
"""
import base64
import json
import random
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.e2e.conftest import start_module_platform  # noqa: F401  (the module's platform)
from tests.security.leaks import secrets_in_logs
from tests.security.matrix import ACCESS, PUBLIC, PUBLIC_OPERATIONS, ROLES

pytestmark = pytest.mark.slow

API = "/api/v1"
NOT_CREDENTIALS = ("Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer sk_not-a-key", "Bearer ", "bearer x.y.z")
PATH_VALUES = {"sku": "NO-SUCH-SKU", "month": "2026-01", "code": "NOWHERE"}  # any other parameter is an id
NEGATIVE_EXAMPLES = 1  # tests/e2e/test_reports_openapi_fuzz.py adds positive and negative data as admin


class Staff:
    """One login per role, made through POST /users (an API key for `integration`), with the secrets
    kept so the logs can be searched for them."""

    def __init__(self, platform):
        self.platform = platform
        self.admin = platform.admin()
        self.secrets = [platform.admin_password, platform.procs["gateway"].env["GATEWAY_TOKEN_SECRET"]]
        self.headers = {"admin": self.admin.headers}
        self.staff_ids = {}
        suffix = uuid.uuid4().hex[:6]
        for role in ROLES:
            if role in ("admin", "integration"):
                continue
            username = f"{role.replace('_', '-')}-{suffix}"
            password = f"Pw!{uuid.uuid4().hex}"
            user = self._create("users", {"username": username, "password": password, "role": role,
                                          "display_name": role.title(), "team": "east-1"})
            self.staff_ids[role] = user["staff_id"]
            self.secrets.append(password)
            token = self.login(username, password)
            self.headers[role] = {"Authorization": f"Bearer {token}"}
        key = self._create("api-keys", {"name": "ERP sync", "role": "integration"})["key"]
        self.secrets += [key, self.admin.headers["Authorization"].split()[1]]
        self.headers["integration"] = {"Authorization": f"Bearer {key}"}

    def _create(self, path, body):
        answer = self.platform.wait_for(lambda: _accepted(self.admin.post(path, body)), what=f"POST /{path}")
        return answer.json()

    def login(self, username, password):
        answer = requests.post(self.platform.api("auth/token"), json={"username": username, "password": password},
                               timeout=15)
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        self.secrets.append(token)
        return token


def _accepted(answer):
    """The answer when it is not a 503 (the admin's staff record is made in the background at start)."""
    if answer.status_code == 503:
        return None
    assert answer.status_code == 201, answer.text
    return answer


@pytest.fixture(scope="module")
def platform(start_module_platform):
    return start_module_platform("customer", "order", "inventory", "billing", "aftersales",
                                 env={"gateway": {"GATEWAY_RATE_LIMIT_RATE": "0"}})  # thousands of calls


@pytest.fixture(scope="module")
def staff(platform):
    return Staff(platform)


@pytest.fixture(scope="module")
def document(platform):
    answer = requests.get(platform.api("openapi.json"), timeout=10)
    assert answer.status_code == 200
    return answer.json()


def operations(document):
    """("GET", "/customers/{customer_id}") for every operation of the document, without the base path."""
    return [(method.upper(), path[len(API):]) for path, item in document["paths"].items()
            for method in item if method in ("get", "post", "put", "patch", "delete")]


def concrete(path):
    """The path with every parameter filled in: an id nobody has, or a value of the right form."""
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), str(uuid.uuid4())), path)


def call(platform, method, path, headers=None, **kwargs):
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return requests.request(method, platform.api(concrete(path)), headers=headers or {}, json=body, timeout=60,
                            **kwargs)


# -- the matrix ---------------------------------------------------------------------------------
def test_every_operation_of_the_served_document_has_an_access_entry(document):
    """A new endpoint is not silently open to every role: it needs its line in matrix.ACCESS (API.md)."""
    served = {f"{method} {path}" for method, path in operations(document)}
    assert len(served) >= 140
    missing = sorted(served - set(ACCESS) - PUBLIC_OPERATIONS)
    stale = sorted(set(ACCESS) - served)
    assert not missing, "operations without an entry in tests/security/matrix.py ACCESS: " + ", ".join(missing)
    assert not stale, "entries in ACCESS the gateway does not serve: " + ", ".join(stale)


def test_every_role_is_allowed_or_refused_403_on_every_operation_as_api_md_says(platform, staff, document):
    """API.md "Conventions": wrong role → 403; "Roles": the twelve roles. Each (operation, role) pair is
    called once with ids nobody has and an empty body: a role API.md lets through is not refused
    (what it gets instead — 404, 422, 200 — is the endpoint's business), every other role gets 403."""
    pairs = [(method, path, role) for method, path in operations(document)
             if f"{method} {path}" not in PUBLIC_OPERATIONS for role in ROLES]

    def check(pair):
        method, path, role = pair
        answer = call(platform, method, path, staff.headers[role])
        allowed = role in ACCESS[f"{method} {path}"]
        if answer.status_code >= 500:
            return f"{method} {path} as {role}: {answer.status_code} {answer.text[:300]}"
        if allowed and answer.status_code in (401, 403):
            return f"{method} {path} as {role}: refused {answer.status_code} but API.md allows it"
        if not allowed and (answer.status_code != 403 or answer.json().get("code") != "FORBIDDEN"):
            return f"{method} {path} as {role}: {answer.status_code} but API.md refuses it (403)"
        return None

    with ThreadPoolExecutor(12) as pool:
        wrong = [found for found in pool.map(check, pairs) if found]
    assert len(pairs) >= 1600
    assert not wrong, f"{len(wrong)} of {len(pairs)} (operation, role) pairs:\n" + "\n".join(wrong)


def test_no_operation_answers_without_a_credential_but_health_readiness_metrics_and_docs(platform, document):
    """API.md "Conventions": every path but /health, /ready, /metrics, /docs and the OpenAPI document
    needs a credential (401 with WWW-Authenticate); a credential that is not one is a 401 too."""
    wrong = []
    for method, path in operations(document):
        if f"{method} {path}" in PUBLIC_OPERATIONS:
            continue
        for headers in ({}, {"Authorization": random.choice(NOT_CREDENTIALS)}):
            answer = call(platform, method, path, headers)
            if answer.status_code != 401 or not answer.headers.get("WWW-Authenticate", "").startswith("Bearer"):
                wrong.append(f"{method} {path} with {headers or 'nothing'}: {answer.status_code}")
    assert not wrong, "\n".join(wrong)
    gateway = platform.procs["gateway"]
    for path in PUBLIC:
        assert requests.get(gateway.url(path), timeout=10).status_code == 200, path
    for name, proc in platform.procs.items():  # every service's own operations port
        for path in ("/health", "/ready", "/metrics"):
            assert requests.get(proc.url(path), timeout=10).status_code == 200, (name, path)


# -- tokens and passwords -----------------------------------------------------------------------
def _forge(claims, key, algorithm="HS256", headers=None):
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def _unsigned(claims):
    part = lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")  # noqa: E731
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_tokens_are_hs256_expire_and_carry_no_authority_of_their_own(platform, staff):
    """API.md "Conventions" (auth): a bearer token with `expires_in`. The algorithm is pinned (HS256):
    `alg: none`, another HMAC and a token signed with another key are refused; an expired token is
    refused; the role claim is not trusted — a rep's token re-signed claiming `admin` is still a rep."""
    rep = staff.headers["sales_rep"]["Authorization"].split()[1]
    secret = platform.procs["gateway"].env["GATEWAY_TOKEN_SECRET"]
    header = jwt.get_unverified_header(rep)
    claims = jwt.decode(rep, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["exp"] - claims["iat"] == 3600 and claims["exp"] > time.time()
    assert staff.secrets[0] not in rep  # nothing secret inside

    def status(token, path="me"):
        return requests.get(platform.api(path), headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code

    assert status(rep) == 200
    now = int(time.time())
    expired = dict(claims, iat=now - 7200, exp=now - 60)
    forged = {
        "alg none": _unsigned(claims),
        "HS512 with the real key": _forge(claims, secret, "HS512"),
        "HS256 with another key": _forge(claims, uuid.uuid4().hex * 2),
        "expired": _forge(expired, secret),
        "no exp": _forge({k: v for k, v in claims.items() if k != "exp"}, secret),
        "another issuer": _forge(dict(claims, iss="someone-else"), secret),
        "payload changed, signature kept": ".".join([rep.split(".")[0], _unsigned(dict(claims, role="admin"))
                                                     .split(".")[1], rep.split(".")[2]]),
        "unknown credential": _forge(dict(claims, cid=str(uuid.uuid4())), secret),
    }
    accepted = {name: s for name, token in forged.items() if (s := status(token)) != 401}
    assert not accepted, f"forged tokens accepted: {accepted}"
    answer = requests.get(platform.api("me"), headers={"Authorization": f"Bearer {forged['expired']}"}, timeout=10)
    assert answer.json()["code"] == "INVALID_TOKEN" and "expired" in answer.json()["detail"]
    # the role comes from the credential: a correctly signed token claiming admin is still the rep's
    claiming = _forge(dict(claims, role="admin", username="admin"), secret)
    assert status(claiming, "users") == 403
    me = requests.get(platform.api("me"), headers={"Authorization": f"Bearer {claiming}"}, timeout=10).json()
    assert me["role"] == "sales_rep"


def test_login_answers_alike_for_an_unknown_user_and_a_wrong_password(platform, staff):
    """Usernames cannot be probed through the login: the same 401 for both."""
    answers = [requests.post(platform.api("auth/token"), json=body, timeout=15)
               for body in ({"username": "admin", "password": "wrong-password"},
                            {"username": f"nobody-{uuid.uuid4().hex[:6]}", "password": "wrong-password"})]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()


def test_passwords_and_api_keys_are_stored_hashed(platform, staff, db_connect):
    """DESIGN.md §1: the gateway keeps password hashes (argon2) and API keys as digests, never the
    secrets themselves."""
    with db_connect(platform.procs["gateway"].env["DB_NAME"]).cursor() as cur:
        cur.execute("SELECT kind, secret_hash FROM credentials")
        rows = cur.fetchall()
    assert len(rows) >= len(ROLES)
    for row in rows:
        if row["kind"] == "password":
            assert row["secret_hash"].startswith("$argon2id$"), row["secret_hash"][:12]
        else:
            assert re.fullmatch(r"[0-9a-f]{64}", row["secret_hash"])
    stored = " ".join(row["secret_hash"] for row in rows)
    assert not [secret for secret in staff.secrets if secret in stored]


# -- caps -------------------------------------------------------------------------------------
def test_request_bodies_are_capped(platform, staff):
    """A body over GATEWAY_MAX_BODY_BYTES (1 MiB) is refused with 413 before it is read, whether it
    says its length or streams it in chunks; a body just under the cap is read (and validated)."""
    admin = staff.headers["admin"]
    big = json.dumps({"name": "x" * (1024 * 1024)}).encode()
    for method, path in (("POST", "customers"), ("PATCH", f"customers/{uuid.uuid4()}"), ("PUT", "territories/EAST")):
        headers = dict(admin, **{"Content-Type": "application/json"})
        answer = requests.request(method, platform.api(path), data=big, headers=headers, timeout=60)
        assert answer.status_code == 413 and answer.json()["code"] == "PAYLOAD_TOO_LARGE", (path, answer.text[:200])
        chunked = requests.request(method, platform.api(path), data=iter([big[:500_000], big[500_000:]]),
                                   headers=headers, timeout=60)
        assert chunked.status_code == 413, (path, chunked.status_code)
    under = json.dumps({"name": "x" * 1000}).encode()
    for data in (under, iter([under[:500], under[500:]])):  # read, then refused by the schema (fields missing)
        answer = requests.post(platform.api("customers"), data=data, headers=dict(admin, **{
            "Content-Type": "application/json"}), timeout=60)
        assert answer.status_code == 422 and "industry" in answer.json()["errors"], answer.text[:300]


def test_every_list_caps_its_page_size(platform, staff, document):
    """API.md "Lists": `limit` default 50, max 200 — on every operation that takes a `limit`,
    201 and 0 are a 422 naming `limit`, 200 is served."""
    def names(method, path):
        for parameter in document["paths"][API + path][method.lower()].get("parameters", []):
            if "$ref" in parameter:
                parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
            yield parameter["name"]

    lists = [(method, path) for method, path in operations(document) if "limit" in names(method, path)]
    assert len(lists) >= 25
    wrong = []
    for method, path in lists:
        headers = staff.headers[sorted(ACCESS[f"{method} {path}"])[0]]
        url = platform.api(concrete(path))
        for limit in (201, 0, 10_000_000):
            answer = requests.get(url, params={"limit": limit}, headers=headers, timeout=60)
            if answer.status_code != 422 or "limit" not in answer.json().get("errors", {}):
                wrong.append(f"{path}?limit={limit}: {answer.status_code} {answer.text[:200]}")
        answer = requests.get(url, params={"limit": 200}, headers=headers, timeout=60)
        if answer.status_code not in (200, 404):
            wrong.append(f"{path}?limit=200: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)


# -- fuzzing ----------------------------------------------------------------------------------
def test_negative_data_on_every_operation_never_gets_a_server_error(platform, staff, document):
    """Schemathesis negative data (bodies, query strings, path parameters and headers that break the
    schema) for every operation of the served document, sent with a role API.md allows to call it so
    that validation — not the role check — answers: never a 5xx."""
    base = platform.procs["gateway"].url("")
    schema = schemathesis.openapi.from_dict(document)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path[len(API):]}"
        roles = ACCESS.get(label)
        headers = staff.headers["sales_rep" if roles and "sales_rep" in roles else sorted(roles or ["admin"])[0]]

        @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=NEGATIVE_EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def generated(case):
            case.call_and_validate(base_url=base, headers=headers, checks=[not_a_server_error], timeout=60)

        try:
            generated()
        except BaseException as exc:  # collect them all, then fail once naming each
            failures.append(f"{label}: {exc}")
    assert not failures, f"{len(failures)} failing operation(s):\n\n" + "\n\n".join(failures)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@pytest.fixture(scope="module")
def raw(platform, staff):
    def send(method, path, headers=None, **kwargs):
        kwargs["headers"] = dict(staff.headers["sales_rep"], **(headers or {}))
        answer = requests.request(method, platform.api(path), timeout=60, **kwargs)
        assert answer.status_code < 500, f"{method} {path} {kwargs}: {answer.status_code} {answer.text[:300]}"
        return answer
    return send


BOUNDED = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))


@BOUNDED
@given(authorization=TEXT, request_id=TEXT, key=TEXT)
def test_hypothesis_made_headers_never_get_a_server_error(raw, authorization, request_id, key):
    """Any Authorization, X-Request-Id and Idempotency-Key text: a 4xx at worst (HTTP allows latin-1
    header values; what cannot be sent is not sent)."""
    def latin(value):
        return re.sub(r"^\s+|[\r\n]", "", value.encode("utf-8").decode("latin-1"))
    answer = raw("POST", "customers", json={}, headers={"Authorization": latin(authorization)})
    assert answer.status_code == 401
    raw("POST", "customers", json={}, headers={"X-Request-Id": latin(request_id), "Idempotency-Key": latin(key)})


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
                    max_leaves=20)


@BOUNDED
@given(body=JSON, data=st.binary(max_size=500), query=st.dictionaries(TEXT, TEXT, max_size=4))
def test_hypothesis_made_bodies_and_queries_never_get_a_server_error(raw, body, data, query):
    """Any JSON value as a body, any bytes, any query string: 400, 415 or 422, never a 5xx."""
    raw("POST", "orders", json=body)
    raw("POST", "service-requests", data=data)
    raw("GET", "customers", params=query)
    raw("GET", "orders", params=query)


# -- last: nothing secret in any log of the run ----------------------------------------------------
def test_no_password_token_or_key_in_any_log_line_of_the_run(platform, staff):
    """DESIGN.md §4: no secret in logs. After everything above (logins, forged tokens, thousands of
    refused and fuzzed calls), the full log of every process holds none of the passwords, access tokens,
    API keys or the token secret, and no Authorization header."""
    assert not secrets_in_logs(platform, staff.secrets)

