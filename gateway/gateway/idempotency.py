"""`Idempotency-Key` on POST: the first answer is kept for 24 hours, scoped to the credential.

  * the record is inserted "in progress" (and committed) before the service is called, so two
    concurrent requests with one key cannot both run: the second gets 409 IDEMPOTENCY_KEY_IN_USE;
  * a repeat with the same key and the same request gets the first answer (status, body and the
    headers that matter) plus `Idempotent-Replayed: true`, and calls nothing;
  * the same key with another request (method, path or body) gets 422 IDEMPOTENCY_KEY_REUSED;
  * only a final answer is kept: a success, or a refusal of the request itself (400-422 but 409).
    A 5xx, and a refusal that says "not now" — 409, a conflict with a state that can change
    (INSUFFICIENT_STOCK until goods come in, INVALID_STATE until the document moves on), and 408, 425,
    429 — delete the record, so a retry with the same key runs the command again rather than replaying
    a stale refusal. That is safe: a refused command changed nothing, and the service is idempotent
    too, because its `request_id` is derived from (credential, key).
"""
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from gateway.db import IdempotencyRecords
from gateway.exceptions import IdempotencyKeyInUse, InvalidHeader
from shared.db import TRANSIENT_ERRORS, dumps
from shared.errors import IdempotencyKeyReused, ServiceUnavailable

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("Content-Type", "Location")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
_NAMESPACE = uuid.UUID("0d4c7a3e-5f5b-4f43-9a3c-1b2f6f0f3a61")
FINISH_RETRY_SECONDS = 5.0  # how long recording an answer is retried through a database hiccup
def read_key(headers):
    key = headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not _KEY.match(key):
        raise InvalidHeader(f"{HEADER} must be 1 to 255 printable characters without spaces",
                            errors={HEADER: ["1 to 255 printable ASCII characters, no spaces"]})
    return key


def request_id_for(credential_id, key):
    """The `request_id` the service command gets: the same for every retry of one request."""
    return str(uuid.uuid5(_NAMESPACE, f"{credential_id}:{key}"))


def request_hash(method, path, payload):
    return hashlib.sha256(dumps([method, path, payload]).encode()).hexdigest()


NOT_NOW = frozenset({408, 409, 425, 429})  # refusals a retry may find different


def final(status):
    """Whether an answer with this status is kept for a replay."""
    return status < 500 and status not in NOT_NOW


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: dict
    body: str


class Claim:
    """This request's hold on (credential, key)."""

    def __init__(self, database, settings, credential_id, key, method, path, payload):
        self.database = database
        self.settings = settings
        self.credential_id = credential_id
        self.key = key
        self.method = method
        self.path = path
        self.digest = request_hash(method, path, payload)
        self.request_id = request_id_for(credential_id, key)

    def begin(self):
        """None when this request now holds the key; the stored answer for a replay."""
        with self.database.autocommit() as uow:
            row = IdempotencyRecords(uow).claim(
                self.credential_id, self.key, self.method, self.path, self.digest,
                self.settings.idempotency_ttl, self.settings.idempotency_lock_timeout)
        if row is None:
            return None
        if row["request_hash"] != self.digest:
            raise IdempotencyKeyReused(
                f"this {HEADER} was already used for a different request ({row['method']} {row['path']})",
                errors={HEADER: ["already used with a different request"]})
        if row["status"] is None:
            raise IdempotencyKeyInUse(f"a request with this {HEADER} is still in progress; retry later")
        return StoredAnswer(row["status"], row["response_headers"] or {}, row["response_body"])

    def finish(self, status, headers, body):
        """Keep a final answer (any other — a 5xx, or a "not now" refusal such as 409 — releases the
        key), retrying a few seconds through a database hiccup — the request may have failed for
        that very reason (the server restarted under it), and a key left in progress refuses the
        client's resend (409) until the lock timeout. Never fails the request: at worst the record
        stays in progress until the lock timeout and a retry runs the command again, which the
        service answers from its own idempotency record."""
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        try:
            try:  # the usual case, without building a Retrying for every request (issue 11)
                self._record(status, kept, body)
            except TRANSIENT_ERRORS + (ServiceUnavailable,):
                for attempt in Retrying(stop=stop_after_delay(FINISH_RETRY_SECONDS), reraise=True,
                                        wait=wait_exponential(multiplier=0.1, max=1),
                                        retry=retry_if_exception_type(TRANSIENT_ERRORS + (ServiceUnavailable,))):
                    with attempt:
                        self._record(status, kept, body)
        except Exception:  # logged; the answer itself still goes out
            log.exception("could not record the answer for an Idempotency-Key")

    def _record(self, status, kept, body):
        """One statement, committed on its own (one round trip)."""
        with self.database.autocommit() as uow:
            records = IdempotencyRecords(uow)
            if not final(status):
                records.release(self.credential_id, self.key)
            else:
                records.complete(self.credential_id, self.key, status, kept, body)
