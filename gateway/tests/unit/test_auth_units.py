"""Bearer tokens: the signature is checked once per token, the expiry and the credential on every request."""
import time
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from gateway import auth
from gateway.exceptions import InvalidToken


class FakeDatabase:
    def __init__(self, row):
        self.row = row
        self.lookups = 0

    @contextmanager
    def autocommit(self):
        def one(sql, params=None):
            self.lookups += 1
            return self.row

        yield SimpleNamespace(one=one)


def test_a_token_is_verified_once_but_its_expiry_and_credential_are_checked_every_time(monkeypatch):
    decoded = []
    real = auth.jwt.decode
    monkeypatch.setattr(auth.jwt, "decode", lambda *args, **kwargs: decoded.append(1) or real(*args, **kwargs))
    settings = SimpleNamespace(token_secret="unit-test-secret-" + "x" * 40, token_ttl=1)
    credential = {"id": uuid.uuid4(), "staff_id": uuid.uuid4(), "role": "sales_rep", "username": "rep"}
    database = FakeDatabase(dict(credential, kind="password", display_name="Rep", active=True, team=None))
    token = auth.issue_token(settings, credential)["access_token"]

    for _ in range(3):
        assert auth.authenticate(database, settings, f"Bearer {token}").role == "sales_rep"
    assert len(decoded) == 1 and database.lookups == 3

    with pytest.raises(InvalidToken, match="not valid"):  # another secret: checked afresh, refused
        auth.authenticate(database, SimpleNamespace(token_ttl=1, token_secret="other-" + "y" * 40),
                          f"Bearer {token}")
    database.row["active"] = False  # disabled since the token was issued
    with pytest.raises(InvalidToken, match="no longer valid"):
        auth.authenticate(database, settings, f"Bearer {token}")
    database.row["active"] = True
    time.sleep(1.1)
    with pytest.raises(InvalidToken, match="expired"):
        auth.authenticate(database, settings, f"Bearer {token}")
