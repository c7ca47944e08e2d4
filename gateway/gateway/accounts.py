"""Users and API keys: credentials in the gateway's database, each tied to a staff member of the
org chart that the customer service keeps.

Creating one records the staff member first (with a staff id derived from the request id, so a
retry records the same one), then inserts the credential: a failure in between leaves at most a
staff member without a login, never a login without a staff member.
"""
import logging
import uuid

from marshmallow import EXCLUDE, Schema, fields, validate

from gateway import auth
from gateway.db import Credentials
from gateway.exceptions import UsernameTaken
from gateway.schemas import ROLES
from shared import pagination
from shared.errors import Conflict

log = logging.getLogger(__name__)


def derived_id(request_id, what):
    return uuid.uuid5(uuid.UUID(str(request_id)), what)


def me(principal):
    return {"staff_id": str(principal.staff_id), "username": principal.username, "role": principal.role,
            "display_name": principal.display_name, "credential": principal.kind}


def create_user(database, customer, call, data):
    """POST /users: the staff member in the org chart, then the login."""
    with database.transaction() as uow:
        if Credentials(uow).username_taken(data["username"]):
            raise UsernameTaken(f"the username {data['username']!r} is taken", username=data["username"])
    staff_id = derived_id(call.request_id, "staff")
    staff = {"id": str(staff_id), "username": data["username"], "display_name": data["display_name"],
             "role": data["role"], "manager_id": data.get("manager"), "team": data.get("team"),
             "region": data.get("region")}
    try:
        customer.create_staff(request_id=call.request_id, actor=call.actor, staff=staff)
    except Conflict as exc:
        if exc.code == "STAFF_EXISTS":  # recorded in the org chart without a login here
            raise UsernameTaken(f"the username {data['username']!r} is taken", username=data["username"]) from None
        raise
    password_hash = auth.hash_password(data["password"])
    credential_id = derived_id(call.request_id, "credential")
    with database.transaction() as uow:
        credentials = Credentials(uow)
        row = credentials.add(id=credential_id, kind="password", username=data["username"],
                              secret_hash=password_hash, staff_id=staff_id, role=data["role"],
                              display_name=data["display_name"], created_by=call.principal.staff_id,
                              team=data.get("team"))
        if row is None:
            row = credentials.get(credential_id)  # this very request, run again after a failure
            if row is None:
                raise UsernameTaken(f"the username {data['username']!r} is taken", username=data["username"])
    return {"staff_id": str(row["staff_id"]), "username": row["username"], "role": row["role"],
            "display_name": row["display_name"], "manager": staff["manager_id"], "team": staff["team"],
            "region": staff["region"]}


def create_api_key(database, customer, call, data):
    """POST /api-keys: an integration acts as a staff member of its own, with the key's role."""
    credential_id = derived_id(call.request_id, "credential")
    staff_id = derived_id(call.request_id, "staff")
    username = f"apikey-{credential_id.hex[:12]}"
    customer.create_staff(request_id=call.request_id, actor=call.actor, staff={
        "id": str(staff_id), "username": username, "display_name": data["name"], "role": data["role"]})
    key = auth.new_api_key()
    with database.transaction() as uow:
        credentials = Credentials(uow)
        row = credentials.add(id=credential_id, kind="api_key", username=username, name=data["name"],
                              secret_hash=auth.key_hash(key), key_prefix=key[:10], staff_id=staff_id,
                              role=data["role"], display_name=data["name"], created_by=call.principal.staff_id)
        if row is None:  # run again after a failure: the key was made then, and is not kept
            row, key = credentials.get(credential_id), None
    return dict(api_key_out(row), key=key)


def update_user(customer, call, staff_id, data):
    """PATCH /users/{staff_id}: the change goes to the org chart; the login follows it through
    staff.updated (follow_staff), as it does for a change made any other way."""
    changes = {("manager_id" if name == "manager" else name): value for name, value in data.items()}
    return customer.update_staff(request_id=call.request_id, actor=call.actor, staff_id=staff_id, changes=changes)


class StaffUpdatedData(Schema):
    """What the gateway reads of `staff.updated` (the customer service's org chart)."""

    class Meta:
        unknown = EXCLUDE

    staff_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    display_name = fields.String(required=True, validate=validate.Length(1, 200))
    team = fields.String(required=True, allow_none=True)
    active = fields.Boolean(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1))




def follow_staff(uow, data):
    """A login's role, team, display name and active follow its staff member (newest version wins)."""
    followed = Credentials(uow).follow_staff(data["staff_id"], data["role"], data["team"], data["display_name"],
                                             data["active"], data["version"])
    if followed:
        log.info("logins follow the org chart", extra={"staff_id": str(data["staff_id"]), "role": data["role"],
                                                       "active": data["active"], "credentials": len(followed)})
    return followed


def list_credentials(database, kind, query, out):
    limit = query["limit"]
    after = pagination.decode(query.get("cursor"), 2)
    with database.transaction() as uow:
        rows = Credentials(uow).page(kind, after, limit)
    items, next_cursor = pagination.page(rows, limit, key=lambda r: (r["created_at"].isoformat(), r["id"]))
    return {"items": [out(row) for row in items], "next_cursor": next_cursor}


def user_out(row):
    return {"staff_id": str(row["staff_id"]), "username": row["username"], "role": row["role"],
            "display_name": row["display_name"], "active": row["active"], "created_at": row["created_at"]}


def api_key_out(row):
    return {"id": str(row["id"]), "name": row["name"], "role": row["role"], "staff_id": str(row["staff_id"]),
            "key_prefix": row["key_prefix"], "active": row["active"], "created_at": row["created_at"]}


# -- the first admin, from the environment -------------------------------------------------------
def bootstrap_credential_id(username):
    return uuid.uuid5(uuid.NAMESPACE_URL, "sales-platform:credential:" + username)


def bootstrap_admin(pool, settings):
    """Create the admin login named by GATEWAY.ADMIN_USERNAME if there is none. Returns the
    admin's credential row (created now or before); its password is never changed here."""
    username = settings.admin_username
    with pool.transaction() as uow:
        row = Credentials(uow).password_login(username)
    if row is not None:
        return row
    password_hash = auth.hash_password(settings.admin_password)
    with pool.transaction() as uow:
        credentials = Credentials(uow)
        created = credentials.add(
            id=bootstrap_credential_id(username), kind="password", username=username, secret_hash=password_hash,
            staff_id=auth.bootstrap_staff_id(username), role="admin", display_name="Administrator",
            staff_recorded=False)
        row = created or credentials.password_login(username)
    if created:
        log.info("created the admin login from the environment", extra={"username": username})
    return row


def admin_staff(row):
    return {"id": str(row["staff_id"]), "username": row["username"], "display_name": row["display_name"],
            "role": "admin"}


def mark_staff_recorded(pool, credential_id):
    with pool.transaction() as uow:
        Credentials(uow).mark_staff_recorded(credential_id)
