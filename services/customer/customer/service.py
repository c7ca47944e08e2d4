"""Entrypoints of the customer service: load input, run the rules in a unit of work, dump output."""
import uuid
from datetime import datetime, timezone

from customer import domain, events
from customer.db import CustomerRepository, StaffRepository
from customer.exceptions import CustomerNotFound, DuplicateCustomer, StaffExists, StaffNotFound
from customer.schemas import (
    customer_filters, customer_input, customer_out, staff_input, staff_out,
)
from shared import pagination
from shared.dependencies import Database
from shared.entrypoints import rpc
from shared.errors import ValidationFailed
from shared.service import ServiceBase
from shared.validation import load, load_actor


class CustomerService(ServiceBase):
    name = "customer"

    db = Database()

    # -- the sales org ------------------------------------------------------------------------
    @rpc
    def create_staff(self, *, request_id, actor, staff):
        actor = load_actor(actor)
        data = load(staff_input, staff)
        with self.db.transaction() as uow:
            replay = uow.begin_command("create_staff", request_id, {"actor": actor, "staff": data})
            if replay:
                return replay.response
            repo = StaffRepository(uow)
            try:
                row = repo.add(data)
            except LookupError:
                raise ValidationFailed("manager not found", errors={"manager_id": ["no such staff member"]})
            if row is None:
                raise StaffExists(f"username {data['username']!r} or this id is already recorded",
                                  username=data["username"])
            result = staff_out.dump(row)
            uow.publish("staff.created", {"staff_id": result["id"], "username": result["username"],
                                          "role": result["role"], "manager_id": result["manager_id"],
                                          "team": result["team"], "region": result["region"]})
            return uow.finish_command(result)

    @rpc
    def get_staff(self, *, staff_id):
        with self.db.transaction() as uow:
            row = StaffRepository(uow).get(_uuid(staff_id, "staff_id"))
        if row is None:
            raise StaffNotFound(f"staff member {staff_id} not found")
        return staff_out.dump(row)

    # -- customers ------------------------------------------------------------------------------
    @rpc
    def create_customer(self, *, request_id, actor, customer):
        """FR-01/02/12/13/15: record a customer; FR-06/07: the recorder owns it unless the name or
        tax id is already recorded, in which case the first record stands and its owner is named."""
        actor = load_actor(actor)
        data = load(customer_input, customer)
        with self.db.transaction() as uow:
            replay = uow.begin_command("create_customer", request_id, {"actor": actor, "customer": data})
            if replay:
                return replay.response
            now = datetime.now(timezone.utc)
            owner_id = domain.initial_owner(actor)
            record = dict(
                data,
                id=uuid.uuid4(),
                number=uow.next_number("CUS", now.year),
                name_key=domain.name_key(data["name"]),
                tax_id=domain.tax_key(data["tax_id"]),
                owner_id=owner_id,
                assigned_at=now if owner_id else None,
                contact_due_by=domain.contact_due_by(now) if owner_id else None,
                created_by=actor["staff_id"],
                created_at=now,
            )
            repo = CustomerRepository(uow)
            try:
                inserted = repo.add(record)
            except LookupError:
                raise StaffNotFound("the acting staff member is not recorded in the org chart")
            if inserted is None:
                existing = repo.find_conflict(record["name_key"], record["tax_id"])
                owner = existing["owner_name"] if existing and existing["owner_id"] else "the customer pool"
                raise DuplicateCustomer(
                    f"{existing['name'] if existing else data['name']} is already recorded; owner: {owner}",
                    owner_id=str(existing["owner_id"]) if existing and existing["owner_id"] else None,
                    owner_name=existing["owner_name"] if existing else None,
                    customer_number=existing["number"] if existing else None,
                )
            repo.add_contacts(record["id"], data["contacts"])
            repo.record_ownership(record["id"], "claim" if owner_id else "pool", owner_id, actor["staff_id"],
                                  "recorded by the collector" if owner_id else "recorded without an owner")
            row = repo.get(record["id"])
            uow.publish("customer.created", events.customer_created(row))
            return uow.finish_command(customer_out.dump(row))

    @rpc
    def get_customer(self, *, actor, customer_id):
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            row = CustomerRepository(uow).get(_uuid(customer_id, "customer_id"))
        # someone else's record answers 404, not 403, so ids cannot be probed (API.md)
        if row is None or not domain.can_see(actor, row["owner_id"]):
            raise CustomerNotFound(f"customer {customer_id} not found")
        return customer_out.dump(row)

    @rpc
    def list_customers(self, *, actor, filters=None, limit=None, cursor=None):
        actor = load_actor(actor)
        filters = load(customer_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        restrict = domain.visible_owner_filter(actor)
        if restrict is not None:
            if filters["owner"] is not None and str(filters["owner"]) != str(restrict):
                return {"items": [], "next_cursor": None}
            filters["owner"] = restrict
        with self.db.transaction() as uow:
            rows = CustomerRepository(uow).list(after=after, limit=limit, **filters)
        items, next_cursor = pagination.page(rows, limit, key=lambda r: (r["created_at"].isoformat(), r["id"]))
        return {"items": [customer_out.dump(dict(row, contacts=[])) for row in items], "next_cursor": next_cursor}


def _uuid(value, field):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed(f"{field} is not a UUID", errors={field: ["not a valid UUID"]}) from None
