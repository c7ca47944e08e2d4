"""Who is calling, and may they: password logins (argon2), signed access tokens (HS256 JWT with
expiry), API keys for integrations (random, shown once, stored as a sha256 hash), role checks.

Both credentials travel as `Authorization: Bearer ...`; an API key is told apart by its prefix.
Every credential is tied to a staff member of the org chart (the customer service's staff id),
and the acting staff member goes with every RPC as `actor` so services authorize and filter rows.
"""
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from eventlet import tpool

from gateway.db import Credentials
from gateway.exceptions import InvalidCredentials, InvalidToken
from gateway.schemas import ROLES
from shared.errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
ISSUER = "sales-platform-gateway"
API_KEY_PREFIX = "sk_"
STAFF_NAMESPACE = uuid.NAMESPACE_URL

# Who may call what (API.md "Roles"). `None` on an endpoint means public.
EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})



def bootstrap_staff_id(username):
    """The admin created from the environment has a staff id every replica agrees on."""
    return uuid.uuid5(STAFF_NAMESPACE, "sales-platform:staff:" + username)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    credential_id: uuid.UUID
    kind: str  # password | api_key
    staff_id: uuid.UUID
    role: str
    username: str
    display_name: str
    team: str = None

    @property
    def actor(self):
        """What every service RPC receives as `actor`."""
        return {"staff_id": str(self.staff_id), "role": self.role, "username": self.username, "team": self.team}


# -- passwords -----------------------------------------------------------------------------------
_hasher = PasswordHasher()
_dummy_hash = None


def hash_password(password):
    # argon2 is CPU-bound by design: run it in a real thread so the event loop keeps serving
    return tpool.execute(_hasher.hash, password)


def verify_password(password_hash, password):
    try:
        return tpool.execute(_hasher.verify, password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _dummy():
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


# -- API keys ------------------------------------------------------------------------------------
def new_api_key():
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


# -- tokens --------------------------------------------------------------------------------------
def issue_token(settings, credential):
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": str(credential["staff_id"]),
        "cid": str(credential["id"]),
        "role": credential["role"],
        "username": credential["username"],
        "iat": now,
        "exp": now + settings.token_ttl,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.token_secret, algorithm=ALGORITHM)
    return {"access_token": token, "token_type": "bearer", "expires_in": settings.token_ttl}


def login(database, settings, username, password):
    """A token for a correct username and password; one answer for an unknown user and a wrong
    password, in about the same time (an unknown user is checked against a dummy hash)."""
    with database.transaction() as uow:
        row = Credentials(uow).password_login(username)
    if row is None:
        verify_password(_dummy(), password)
        raise InvalidCredentials("wrong username or password")
    if not verify_password(row["secret_hash"], password) or not row["active"]:
        raise InvalidCredentials("wrong username or password")
    return issue_token(settings, row)


def authenticate(database, settings, authorization):
    """The Principal behind an `Authorization` header; 401 when missing or not valid."""
    if not authorization:
        raise Unauthorized("this endpoint needs a credential: Authorization: Bearer <token or API key>")
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise InvalidToken("use Authorization: Bearer <token or API key>")
    # one statement each, committed on its own: one round trip, no BEGIN or COMMIT (issue 11)
    if value.startswith(API_KEY_PREFIX):
        with database.autocommit() as uow:
            row = Credentials(uow).by_key_hash(key_hash(value))
        if row is None or not row["active"]:
            raise InvalidToken("unknown or revoked API key")
        return _principal(row)
    try:
        claims = _verified_claims(settings.token_secret, value)
        credential_id = uuid.UUID(claims["cid"])
    except (jwt.ExpiredSignatureError,):
        raise InvalidToken("the access token has expired") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise InvalidToken("the access token is not valid") from None
    with database.autocommit() as uow:
        row = Credentials(uow).get(credential_id)
    # the credential may have been disabled since the token was issued
    if row is None or not row["active"] or not hmac.compare_digest(str(row["staff_id"]), claims["sub"]):
        raise InvalidToken("the access token is no longer valid")
    return _principal(row)


_VERIFIED = {}  # (secret, token) -> claims of a token whose signature and claims were checked
_VERIFIED_MAX = 10_000


def _verified_claims(secret, token):
    """The token's claims, its signature checked once per process rather than on every request (a
    client sends the same token until it expires: 40-70 µs of HMAC, base64 and JSON a request,
    issue 11). A token remembered is still refused once expired; the credential behind it is
    still looked up on every request, so a disabled login is refused at once."""
    claims = _VERIFIED.get((secret, token))
    if claims is not None and time.time() < claims["exp"]:
        return claims
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
                        options={"require": ["exp", "iat", "sub", "cid"]})
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(secret, token)] = claims
    return claims


def authorize(principal, roles):
    if principal.role not in roles:
        raise Forbidden(f"the role {principal.role} may not do this")


def _principal(row):
    return Principal(
        credential_id=row["id"], kind=row["kind"], staff_id=row["staff_id"], role=row["role"],
        username=row["username"], display_name=row["display_name"], team=row.get("team"),
    )
