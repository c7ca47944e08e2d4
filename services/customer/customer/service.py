"""Entrypoints of the customer service: load input, run the rules in a unit of work, dump output.

Commands are idempotent by `request_id` (uow.begin_command); every event goes through the outbox
(uow.publish); row-level access (shared.access) is ANDed into every query (db.Visibility), so
someone else's record answers NOT_FOUND. Periodic jobs take `as_of` and claim their rows with
SKIP LOCKED, so they are safe in every replica at once; each is also an RPC `run_<job>`.
"""
import logging
import uuid
from datetime import date, datetime, timedelta, timezone

from nameko.timer import timer

from customer import domain, events
from customer.db import (
    ClassificationRepository, CollectionRepository, ContactRepository, CustomerRepository, EscalationRepository,
    FollowUpRepository, IntelligenceRepository, LedgerRepository, LogisticsRepository, OpportunityRepository,
    OverviewRepository, ProposalRepository, PurchaseRepository, ReportRepository, ReviewRepository, StaffRepository,
    TerritoryRepository, Visibility, VisitRepository,
)
from customer.exceptions import (
    CollectionNotFound, ConcurrentUpdate, CustomerNotFound, DuplicateCustomer, EscalationNotFound, EscalationOpen,
    FieldInvalid, IntelligenceNotFound, OpportunityNotFound, ProposalNotFound, ReassignmentForbidden, ReviewNotFound,
    ReviewPending, StaffExists, StaffNotFound, VisitNotFound,
)
from customer.schemas import (
    acknowledge_input, approver_out, assign_input, cancel_input, candidate_out, classification_out, classify_input,
    close_input, collection_check_input, collection_detail_out, collection_filters, collection_out, contact_input,
    contact_out, customer_changes, customer_filters, customer_input, customer_out, decision_input, delay_input,
    escalation_detail_out, escalation_filters, escalation_input, escalation_out, follow_up_input, follow_up_out,
    intelligence_filters, intelligence_input, intelligence_out, ledger_out, logistics_input, logistics_out,
    note_input, opportunity_changes, opportunity_filters, opportunity_input, opportunity_out, order_confirmed_data,
    outcome_input, pipeline_input, pool_filters, proposal_changes, proposal_detail_out, proposal_filters,
    proposal_input, proposal_out, proposal_response_input, purchase_out, reject_input, report_input, review_input,
    review_out, staff_changes, staff_filters, staff_input, staff_out, suggestion_out, territory_input, territory_out,
    visit_filters, visit_input, visit_log_input, visit_out, week_row_out,
)
from shared import access, books as kit_books, pagination, workdays
from shared.dependencies import Database
from shared.entrypoints import event_handler, rpc
from shared.errors import ValidationFailed
from shared.service import ServiceBase
from shared.validation import load, load_actor

log = logging.getLogger(__name__)

NUMBERED = [("customers", "number"), ("visits", "number"), ("opportunities", "number"), ("proposals", "number"),
            ("escalations", "number"), ("intelligence", "number")]  # for get_books
JOB_INTERVAL = 60  # seconds between runs of each periodic job, in every replica
JOB_BATCH = 200    # rows claimed per transaction by a job


def _now():
    return datetime.now(timezone.utc)


def _uuid(value, field):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed(f"{field} is not a UUID", errors={field: ["not a valid UUID"]}) from None


def _request_id(value):
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise FieldInvalid("request_id", "a string of 1 to 200 characters")
    return value


def _visibility(actor, pool=True):
    return Visibility(access.scope(actor), pool=pool and domain.sees_pool(actor))


def _scoped(repo, actor, value, field, missing):
    """The row `repo` holds under the id `value` if the actor may see it; else `missing` (404):
    someone else's record answers as if it did not exist."""
    row = repo.get(_uuid(value, field), _visibility(actor, pool=False))
    if row is None:
        raise missing(f"{field.removesuffix('_id')} {value} not found")
    return row


def _logistics_sheet(customer, sheet, now):
    """FR-18: a customer's sheet (all None when there is none) with when its monthly review is due."""
    sheet = sheet or dict.fromkeys(("consignee", "address", "phone", "carrier", "delivery_notes", "reviewed_by",
                                    "reviewed_at"))
    due_by = domain.logistics_review_due(sheet["reviewed_at"]) if sheet.get("reviewed_at") else None
    return dict(sheet, customer_id=customer["id"], customer_name=customer["name"], review_due_by=due_by,
                due=due_by is None or now >= due_by)


def _page(rows, limit, key, dump):
    items, next_cursor = pagination.page(rows, limit, key)
    return {"items": [dump(row) for row in items], "next_cursor": next_cursor}


def _by_time(column):
    return lambda row: (row[column].isoformat(), row["id"])


def _as_of(value, field="as_of"):
    """An injected time for jobs and tests: an ISO date-time with offset, or now."""
    if value is None:
        return _now()
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise FieldInvalid(field, "an ISO 8601 date-time with its offset") from None
    if moment.tzinfo is None:
        raise FieldInvalid(field, "an ISO 8601 date-time with its offset")
    return moment


def _staff_out(row):
    discount, price = domain.authorities(row["role"], row["discount_authority"], row["price_authority"])
    return staff_out.dump(dict(row, discount_authority=discount, price_authority=price))


class CustomerService(ServiceBase):
    name = "customer"

    db = Database()

    # -- plumbing ---------------------------------------------------------------------------------
    @rpc
    def get_books(self):
        """Read-only: the books the invariant checker compares across services (tests/invariants)."""
        with self.db.transaction() as uow:
            return kit_books.snapshot(uow, self.name, NUMBERED)

    def _command(self, name, request_id, request, run):
        """Run `run(uow)` once per `request_id`: a repeat answers the stored answer."""
        with self.db.transaction() as uow:
            replay = uow.begin_command(name, _request_id(request_id), request)
            if replay:
                return replay.response
            return uow.finish_command(run(uow))

    @staticmethod
    def _customer(uow, actor, customer_id, contacts=False):
        row = CustomerRepository(uow).get(_uuid(customer_id, "customer_id"), _visibility(actor), contacts=contacts)
        if row is None:  # someone else's record answers 404, not 403, so ids cannot be probed (API.md)
            raise CustomerNotFound(f"customer {customer_id} not found")
        return row

    @staticmethod
    def _mark_contact(uow, customer, occurred_at):
        """FR-10: a contact after the assignment stops the one-week clock (and un-reclaims)."""
        counts = domain.counts_as_contact(customer["assigned_at"], occurred_at)
        if not CustomerRepository(uow).mark_contacted(customer["id"], customer["assigned_at"], occurred_at, counts):
            raise ConcurrentUpdate("the customer was reassigned meanwhile; record the contact again")

    # == the sales org (FR-119) ===================================================================
    @rpc
    def create_staff(self, *, request_id, actor, staff):
        actor = load_actor(actor)
        data = load(staff_input, staff)

        def run(uow):
            try:
                row = StaffRepository(uow).add(data)
            except LookupError as exc:
                raise FieldInvalid(str(exc), "no such " + ("territory" if str(exc) == "territory" else "staff member"))
            if row is None:
                raise StaffExists(f"username {data['username']!r} or this id is already recorded",
                                  username=data["username"])
            uow.publish("staff.created", events.staff(row))
            return _staff_out(row)

        return self._command("create_staff", request_id, {"actor": actor, "staff": data}, run)

    @rpc
    def update_staff(self, *, request_id, actor, staff_id, changes):
        """Change a staff member (role, manager, team, region, territory, capacity, authorities,
        active). Their customers' owner_team follows a team change (customer.owner_changed)."""
        actor = load_actor(actor)
        data = load(staff_changes, changes)
        staff_id = _uuid(staff_id, "staff_id")
        domain.check_org_change(actor)

        def run(uow):
            repo = StaffRepository(uow)
            if data.get("manager_id") is not None:
                repo.lock_org_chart()
                if data["manager_id"] == staff_id:
                    raise FieldInvalid("manager_id", "nobody is their own manager")
                if repo.get(data["manager_id"]) is None:
                    raise FieldInvalid("manager_id", "no such staff member")
                if staff_id in {m["id"] for m in repo.chain(data["manager_id"])}:
                    raise FieldInvalid("manager_id", "would make a reporting cycle: they report to this staff member")
            try:
                row = repo.update(staff_id, data)
            except LookupError as exc:
                raise FieldInvalid(str(exc), "no such " + ("territory" if str(exc) == "territory" else "staff member"))
            if row is None:
                raise StaffNotFound(f"staff member {staff_id} not found")
            if row["team"] != row["previous_team"]:
                self._follow_team(uow, actor, row)
            uow.publish("staff.updated", events.staff(row))
            return _staff_out(row)

        return self._command("update_staff", request_id, {"actor": actor, "staff_id": staff_id, "changes": data}, run)

    @staticmethod
    def _follow_team(uow, actor, staff):
        """The owner's team moved: every customer of theirs (and their visits and opportunities)
        follows, so managers' row-level scopes stay right; each customer's snapshot moves by
        customer.owner_changed (kind `team`)."""
        now = _now()
        for moved in CustomerRepository(uow).move_team(staff["id"], staff["team"]):
            customer = dict(moved, owner_team=staff["team"])
            uow.publish("customer.owner_changed", events.owner_changed(
                customer, kind="team", previous_owner_id=staff["id"], previous_owner_team=staff["previous_team"],
                reason=f"the owner moved to team {staff['team']}", changed_by=actor["staff_id"], changed_at=now))
        VisitRepository(uow).move_team(staff["id"], staff["team"])
        OpportunityRepository(uow).move_team(staff["id"], staff["team"])
        ProposalRepository(uow).move_team(staff["id"], staff["team"])
        EscalationRepository(uow).move_team(staff["id"], staff["team"])
        IntelligenceRepository(uow).move_team(staff["id"], staff["team"])

    @rpc
    def get_staff(self, *, staff_id):
        """One staff member with their effective discount_authority and price_authority (FR-48)."""
        with self.db.transaction() as uow:
            row = StaffRepository(uow).get(_uuid(staff_id, "staff_id"))
        if row is None:
            raise StaffNotFound(f"staff member {staff_id} not found")
        return _staff_out(row)

    def _list(self, actor, schema, filters, limit, cursor, repository, dump, key=_by_time("created_at"),
              more=lambda filters: ()):
        """A page of the records the actor may see: the filters loaded with `schema`, the limit
        checked, the cursor decoded; `repository(uow).page(visibility, filters, after, limit,
        *more(filters))` reads them and `dump` writes each one."""
        actor = load_actor(actor)
        filters = load(schema, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        extra = more(filters)
        with self.db.transaction() as uow:
            rows = repository(uow).page(_visibility(actor, pool=False), filters, after, limit, *extra)
        return _page(rows, limit, key, dump)

    @rpc
    def list_staff(self, *, actor, filters=None, limit=None, cursor=None):
        load_actor(actor)
        filters = load(staff_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        with self.db.transaction() as uow:
            rows = StaffRepository(uow).page(filters, after, limit)
        return _page(rows, limit, _by_time("created_at"), _staff_out)

    @rpc
    def find_approver(self, *, staff_id, relation):
        """Who holds `relation` for `staff_id` now (docs/INTEGRATION.md); NO_APPROVER when nobody."""
        if relation not in domain.RELATIONS:
            raise FieldInvalid("relation", f"must be one of: {', '.join(domain.RELATIONS)}")
        with self.db.transaction() as uow:
            repo = StaffRepository(uow)
            staff = repo.get(_uuid(staff_id, "staff_id"))
            if staff is None:
                raise StaffNotFound(f"staff member {staff_id} not found")
            chain = repo.chain(staff["id"]) if relation in ("direct_manager", "division_head") else []
            role = {"direct_manager": None, "division_head": "sales_director"}.get(relation, relation)
            holders = repo.holders(role) if role else []
        approver = domain.pick_approver(relation, staff, chain, holders)
        return approver_out.dump(dict(approver, relation=relation))

    @rpc
    def put_territory(self, *, request_id, actor, territory):
        """Create or change a market or area (FR-119: markets are configurable territories)."""
        actor = load_actor(actor)
        data = load(territory_input, territory)
        domain.check_org_change(actor)

        def run(uow):
            repo = TerritoryRepository(uow)
            if data["kind"] == "area":
                parent = repo.get(data["parent_code"]) if data["parent_code"] else None
                if parent is None or parent["kind"] != "market":
                    raise FieldInvalid("parent_code", "an area belongs to an existing market")
            elif data["parent_code"]:
                raise FieldInvalid("parent_code", "a market has no parent")
            try:
                row = repo.put(dict(data, head_id=data["head_id"]))
            except LookupError as exc:
                raise FieldInvalid(str(exc), "no such staff member" if str(exc) == "head_id" else "no such territory")
            return territory_out.dump(row)

        return self._command("put_territory", request_id, {"actor": actor, "territory": data}, run)

    @rpc
    def list_territories(self, *, actor):
        load_actor(actor)
        with self.db.transaction() as uow:
            rows = TerritoryRepository(uow).all()
        return {"items": [territory_out.dump(row) for row in rows], "next_cursor": None}

    # == customers: the archive (FR-01, FR-02, FR-12, FR-15–FR-17) =================================
    @rpc
    def create_customer(self, *, request_id, actor, customer):
        """FR-01/02/12/13/15: record a customer; FR-06/07: the recorder owns it unless the name or
        tax id is already recorded, in which case the first record stands and its owner is named
        (and the refused claim is kept in the ledger)."""
        actor = load_actor(actor)
        data = load(customer_input, customer)

        def run(uow):
            now = _now()
            late_entry = domain.entry_is_late(data["collected_at"], now, workdays.deadline_after_working_days)
            owner_id = domain.initial_owner(actor)
            owner = StaffRepository(uow).get(owner_id) if owner_id else None
            if owner_id and owner is None:
                raise StaffNotFound("the acting staff member is not recorded in the org chart")
            record = dict(
                data, id=uuid.uuid4(), number=uow.next_number("CUS", now.year), name_key=domain.name_key(data["name"]),
                tax_id=domain.tax_key(data["tax_id"]), owner_id=owner_id, owner_team=owner["team"] if owner else None,
                assigned_at=now if owner_id else None, contact_due_by=domain.contact_due_by(now) if owner_id else None,
                created_by=actor["staff_id"], created_at=now, late_entry=late_entry,
            )
            repo = CustomerRepository(uow)
            if repo.add(record) is None:
                existing = repo.find_conflict(record["name_key"], record["tax_id"])
                owner_name = existing["owner_name"] if existing and existing["owner_id"] else "the customer pool"
                error = DuplicateCustomer(
                    f"{existing['name'] if existing else data['name']} is already recorded; owner: {owner_name}",
                    owner_id=str(existing["owner_id"]) if existing and existing["owner_id"] else None,
                    owner_name=existing["owner_name"] if existing else None,
                    customer_number=existing["number"] if existing else None,
                )
                error.existing_id = existing["id"] if existing else None
                raise error
            for contact in data["contacts"]:
                ContactRepository(uow).add(record["id"], contact, actor["staff_id"])
            LedgerRepository(uow).record(
                record["id"], "claim" if owner_id else "pool", owner_id, actor["staff_id"],
                "recorded by the collector" if owner_id else "recorded without an owner",
                owner_team=record["owner_team"], source=data["source"], occurred_at=now)
            ClassificationRepository(uow).record(record["id"], None, data["status"], "recorded", actor["staff_id"])
            row = repo.get(record["id"], contacts=True)
            uow.publish("customer.created", events.customer_created(row))
            return customer_out.dump(row)

        try:
            return self._command("create_customer", request_id, {"actor": actor, "customer": data}, run)
        except DuplicateCustomer as exc:
            self._record_refused_claim(request_id, actor, data, exc)
            raise

    def _record_refused_claim(self, request_id, actor, data, exc):
        """FR-07: the ledger keeps the later claim too (who, when, for what name), so "first
        recorded" stays provable and the manager sees the conflict; at most once per request."""
        if getattr(exc, "existing_id", None) is None:
            return
        try:
            with self.db.transaction() as uow:
                LedgerRepository(uow).record(
                    exc.existing_id, "claim_refused", actor["staff_id"], actor["staff_id"],
                    f"a later claim; {exc.extra.get('customer_number')} was recorded first",
                    owner_team=actor.get("team"), source=data["source"], claimed_name=data["name"],
                    evidence=data.get("tax_id"), request_id=f"create_customer:{request_id}")
        except Exception:  # the refusal itself must reach the caller whatever happens here
            log.exception("could not record the refused claim in the ownership ledger")

    @rpc
    def get_customer(self, *, actor, customer_id):
        """One customer with contacts and the snapshot (owner_id, owner_team, owner_name, region)."""
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            row = self._customer(uow, actor, customer_id, contacts=True)
        return customer_out.dump(row)

    @rpc
    def list_customers(self, *, actor, filters=None, limit=None, cursor=None):
        actor = load_actor(actor)
        filters = load(customer_filters, filters or {})
        quiet_days = filters.pop("quiet_days", None)
        if quiet_days is not None:  # FR-20, FR-35: the regular contact that is due
            filters["quiet_since"] = _now() - timedelta(days=quiet_days)
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        with self.db.transaction() as uow:
            rows = CustomerRepository(uow).list(_visibility(actor), after=after, limit=limit, **filters)
        return _page(rows, limit, _by_time("created_at"), lambda row: customer_out.dump(dict(row, contacts=[])))

    @rpc
    def update_customer(self, *, request_id, actor, customer_id, changes):
        """Change the profile (FR-01, FR-12, FR-16, FR-17; tax id and bank details); publishes
        customer.updated. The name and tax id keep the duplicate rule (FR-07)."""
        actor = load_actor(actor)
        data = load(customer_changes, changes)

        def run(uow):
            customer = self._customer(uow, actor, customer_id)
            values = dict(data)
            if "name" in values:
                values["name_key"] = domain.name_key(values["name"])
            if "tax_id" in values:
                values["tax_id"] = domain.tax_key(values["tax_id"])
            changed = {k: v for k, v in values.items() if v != customer.get(k) and k != "name_key"}
            repo = CustomerRepository(uow)
            if not changed:
                return customer_out.dump(repo.get(customer["id"], contacts=True))
            if "name" in changed:
                changed["name_key"] = values["name_key"]
            result = repo.update_profile(customer["id"], customer["version"], changed)
            if result == "duplicate":
                existing = repo.find_conflict(changed.get("name_key", domain.name_key(customer["name"])),
                                              changed.get("tax_id", customer["tax_id"]), exclude_id=customer["id"])
                owner = existing["owner_name"] if existing and existing["owner_id"] else "the customer pool"
                raise DuplicateCustomer(
                    f"{existing['name'] if existing else 'another customer'} already has this name or tax id;"
                    f" owner: {owner}",
                    owner_id=str(existing["owner_id"]) if existing and existing["owner_id"] else None,
                    owner_name=existing["owner_name"] if existing else None,
                    customer_number=existing["number"] if existing else None)
            if result is None:
                raise ConcurrentUpdate("the customer changed meanwhile; read it again")
            row = repo.get(customer["id"], contacts=True)
            uow.publish("customer.updated", events.customer_updated(row, set(changed) - {"name_key"}))
            return customer_out.dump(row)

        return self._command("update_customer", request_id,
                             {"actor": actor, "customer_id": str(customer_id), "changes": data}, run)

    @rpc
    def add_contact(self, *, request_id, actor, customer_id, contact):
        """FR-15: a contact person with position and decision authority."""
        actor = load_actor(actor)
        data = load(contact_input, contact)

        def run(uow):
            customer = self._customer(uow, actor, customer_id)
            return contact_out.dump(ContactRepository(uow).add(customer["id"], data, actor["staff_id"]))

        return self._command("add_contact", request_id,
                             {"actor": actor, "customer_id": str(customer_id), "contact": data}, run)

    @rpc
    def list_contacts(self, *, actor, customer_id, limit=None, cursor=None):
        """FR-15: the contact persons, in the order they were added."""
        return self._customer_list(actor, customer_id, limit, cursor, ContactRepository, "created_at",
                                   contact_out.dump)

    @rpc
    def record_follow_up(self, *, request_id, actor, customer_id, follow_up):
        """FR-22, FR-27, FR-32: a phone call, e-mail, ... on the archive; it counts as contact (FR-10)."""
        actor = load_actor(actor)
        data = load(follow_up_input, follow_up)
        domain.not_in_future("occurred_at", data["occurred_at"], _now())

        def run(uow):
            customer = self._customer(uow, actor, customer_id)
            row = FollowUpRepository(uow).add(dict(data, id=uuid.uuid4(), customer_id=customer["id"],
                                                   recorded_by=actor["staff_id"]))
            self._mark_contact(uow, customer, data["occurred_at"])
            return follow_up_out.dump(row)

        return self._command("record_follow_up", request_id,
                             {"actor": actor, "customer_id": str(customer_id), "follow_up": data}, run)

    @rpc
    def list_follow_ups(self, *, actor, customer_id, limit=None, cursor=None):
        return self._customer_list(actor, customer_id, limit, cursor, FollowUpRepository, "occurred_at",
                                   follow_up_out.dump)

    @rpc
    def list_purchases(self, *, actor, customer_id, limit=None, cursor=None):
        """FR-17: the customer's confirmed orders, newest first."""
        return self._customer_list(actor, customer_id, limit, cursor, PurchaseRepository, "confirmed_at",
                                   purchase_out.dump, id_column="order_id")

    def _customer_list(self, actor, customer_id, limit, cursor, repository, time_column, dump, id_column="id"):
        actor = load_actor(actor)
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        with self.db.transaction() as uow:
            customer = self._customer(uow, actor, customer_id)
            rows = repository(uow).page(customer["id"], after, limit)
        return _page(rows, limit, lambda row: (row[time_column].isoformat(), row[id_column]), dump)

    # == ownership and the pool (FR-06–FR-11) ======================================================
    @rpc
    def assign_owner(self, *, request_id, actor, customer_id, owner_id, reason):
        """FR-08/09/10/11: a manager gives a customer (from the pool, reclaimable, or by override)
        to a salesperson; the ledger keeps who, when and why; customer.owner_changed follows."""
        actor = load_actor(actor)
        data = load(assign_input, {"owner_id": owner_id, "reason": reason})

        def run(uow):
            customer = self._customer(uow, actor, customer_id)
            target = StaffRepository(uow).get(data["owner_id"])
            kind = domain.assignment_kind(actor, customer, target)
            now = _now()
            repo = CustomerRepository(uow)
            if not repo.change_owner(customer["id"], customer["version"], target["id"], target["team"], now,
                                     domain.contact_due_by(now)):
                raise ConcurrentUpdate("the customer changed meanwhile; read it again")
            OpportunityRepository(uow).follow_owner(customer["id"], target["id"], target["team"])
            ProposalRepository(uow).follow_owner(customer["id"], target["id"], target["team"])
            EscalationRepository(uow).follow_owner(customer["id"], target["id"], target["team"])
            LedgerRepository(uow).record(
                customer["id"], kind, target["id"], actor["staff_id"], data["reason"], owner_team=target["team"],
                previous_owner_id=customer["owner_id"], source="manager", occurred_at=now)
            row = repo.get(customer["id"], contacts=True)
            uow.publish("customer.owner_changed", events.owner_changed(
                row, kind=kind, previous_owner_id=customer["owner_id"], previous_owner_team=customer["owner_team"],
                reason=data["reason"], changed_by=actor["staff_id"], changed_at=now))
            return customer_out.dump(row)

        return self._command("assign_owner", request_id,
                             {"actor": actor, "customer_id": str(customer_id), "assign": data}, run)

    @rpc
    def list_owner_history(self, *, actor, customer_id, limit=None, cursor=None):
        """The ownership ledger of one customer, oldest first (FR-07: the first claim is provable)."""
        actor = load_actor(actor)
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 1)
        with self.db.transaction() as uow:
            customer = self._customer(uow, actor, customer_id)
            rows = LedgerRepository(uow).page(customer["id"], after, limit)
        return _page(rows, limit, lambda row: (row["id"],), ledger_out.dump)

    @rpc
    def list_pool(self, *, actor, filters=None, limit=None, cursor=None):
        """FR-09/10/11: customers without an owner, and owned ones not contacted within a week."""
        actor = load_actor(actor)
        filters = load(pool_filters, filters or {})
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        with self.db.transaction() as uow:
            rows = CustomerRepository(uow).list(
                _visibility(actor), region=filters["region"], industry=filters["industry"],
                pool=filters["reason"] or "any", after=after, limit=limit)
        return _page(rows, limit, _by_time("created_at"), lambda row: customer_out.dump(dict(row, contacts=[])))

    @rpc
    def suggest_distribution(self, *, actor, team=None, limit=None):
        """FR-09: a balanced plan for the pool — each customer to the rep with the fewest customers
        for their capacity. A suggestion only: the manager assigns (assign_owner)."""
        actor = load_actor(actor)
        limit = pagination.check_limit(limit)
        if actor["role"] not in domain.MANAGING_ROLES:
            raise ReassignmentForbidden(f"the role {actor['role']} does not distribute customers (FR-09)")
        if actor["role"] == "sales_manager":
            if team is not None and team != actor.get("team"):
                raise FieldInvalid("team", "a sales manager distributes to their own team")
            team = actor.get("team")
        with self.db.transaction() as uow:
            pool = CustomerRepository(uow).list(_visibility(actor), pool="any", limit=limit)[:limit]
            candidates = StaffRepository(uow).candidates(team)
        plan, people = domain.balanced_plan(candidates, pool)
        return {"team": team, "plan": [suggestion_out.dump(p) for p in plan],
                "candidates": [candidate_out.dump(p) for p in people]}

    @rpc
    def run_contact_deadline(self, *, as_of=None):
        """FR-10 job, on demand: mark customers not contacted within 7 days of assignment."""
        return self._contact_deadline(_as_of(as_of))

    @timer(interval=JOB_INTERVAL)
    def contact_deadline_job(self):
        self._contact_deadline(_now())

    def _contact_deadline(self, as_of):
        marked = []
        while True:
            with self.db.transaction() as uow:
                rows = CustomerRepository(uow).claim_reclaimable(as_of, JOB_BATCH)
                for row in rows:
                    LedgerRepository(uow).record(
                        row["id"], "reclaimable", row["owner_id"], None,
                        "not contacted within 7 days of assignment (FR-10)", owner_team=row["owner_team"],
                        source="contact_deadline", occurred_at=as_of)
                    uow.publish("customer.reclaimable", events.reclaimable(row, as_of))
            marked += [str(row["id"]) for row in rows]
            if len(rows) < JOB_BATCH:
                break
        if marked:
            log.info("contact deadline: %s customer(s) reclaimable", len(marked))
        return {"as_of": as_of.isoformat(), "marked": len(marked), "customer_ids": marked[:1000]}

    # == classification (FR-13) ====================================================================
    @rpc
    def classify_customer(self, *, request_id, actor, customer_id, status, reason=None):
        actor = load_actor(actor)
        data = load(classify_input, {"status": status, "reason": reason})

        def run(uow):
            customer = self._customer(uow, actor, customer_id)
            change = domain.classification_change(actor, customer["status"], data["status"])
            repo = CustomerRepository(uow)
            if change is not None:
                if not repo.set_status(customer["id"], customer["version"], data["status"]):
                    raise ConcurrentUpdate("the customer changed meanwhile; read it again")
                changed = ClassificationRepository(uow).record(
                    customer["id"], change[0], change[1], "manual", actor["staff_id"], data["reason"])
                uow.publish("customer.classified", events.classified(
                    customer, previous_status=change[0], status=change[1], source="manual",
                    changed_by=actor["staff_id"], reason=data["reason"], at=changed["occurred_at"]))
            return customer_out.dump(repo.get(customer["id"], contacts=True))

        return self._command("classify_customer", request_id,
                             {"actor": actor, "customer_id": str(customer_id), "classify": data}, run)

    @rpc
    def list_classifications(self, *, actor, customer_id, limit=None, cursor=None):
        actor = load_actor(actor)
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 1)
        with self.db.transaction() as uow:
            customer = self._customer(uow, actor, customer_id)
            rows = ClassificationRepository(uow).page(customer["id"], after, limit)
        return _page(rows, limit, lambda row: (row["id"],), classification_out.dump)

    @event_handler("order", "order.confirmed", expects=order_confirmed_data)
    def on_order_confirmed(self, uow, event):
        """FR-17: purchase history; FR-13: the first confirmed order makes the customer `signed`."""
        data = event["data"]
        repo = CustomerRepository(uow)
        # orders of one customer confirmed at once queue here (the lock CustomerRepository.lock takes)
        customer = repo.get(data["customer_id"], contacts=False, queue=True)
        if customer is None:
            raise CustomerNotFound(f"order {data['number']} names an unknown customer {data['customer_id']}")
        lines = [{"sku": line["sku"], "quantity": line["quantity"], "unit_price": str(line["unit_price"])}
                 for line in data["lines"]]
        if PurchaseRepository(uow).add(dict(data, lines=lines)) is None:
            return  # this order is in the history already (another delivery of the same fact)
        if customer["first_order_at"] is not None:
            return  # not the first (read under the lock: no other order's confirmation can be in between)
        first = repo.record_first_order(customer["id"], data["confirmed_at"])
        if first is not None and first["previous_status"] != "signed":
            changed = ClassificationRepository(uow).record(
                customer["id"], first["previous_status"], "signed", "order", None,
                reason=f"first confirmed order {data['number']}", order_id=data["order_id"])
            uow.publish("customer.classified", events.classified(
                customer, previous_status=first["previous_status"], status="signed", source="order",
                changed_by=None, reason=changed["reason"], order_id=data["order_id"], at=changed["occurred_at"]))

    # == customer review (FR-14) ===================================================================
    @rpc
    def submit_review(self, *, request_id, actor, customer_id, review):
        actor = load_actor(actor)
        data = load(review_input, review)
        domain.check_review_validity(data["valid_until"], domain.local_today(_now()))

        def run(uow):
            customer = self._customer(uow, actor, customer_id)
            row = ReviewRepository(uow).add(dict(data, id=uuid.uuid4(), customer_id=customer["id"],
                                                 submitted_by=actor["staff_id"]))
            if row is None:
                raise ReviewPending("a review of this customer is already waiting for the product manager")
            return review_out.dump(row)

        return self._command("submit_review", request_id,
                             {"actor": actor, "customer_id": str(customer_id), "review": data}, run)

    @rpc
    def approve_review(self, *, request_id, actor, customer_id, review_id, comment=None):
        return self._decide_review(request_id, actor, customer_id, review_id, True, {"comment": comment})

    @rpc
    def reject_review(self, *, request_id, actor, customer_id, review_id, comment):
        return self._decide_review(request_id, actor, customer_id, review_id, False, {"comment": comment})

    def _decide_review(self, request_id, actor, customer_id, review_id, approve, decision):
        actor = load_actor(actor)
        data = load(decision_input if approve else reject_input, decision)
        review_id = _uuid(review_id, "review_id")
        customer_id = _uuid(customer_id, "customer_id")

        def run(uow):
            repo = ReviewRepository(uow)
            review = repo.get(review_id, _visibility(actor))
            if review is None or review["customer_id"] != customer_id:
                raise ReviewNotFound(f"review {review_id} not found")
            domain.check_review_decision(actor, review, domain.local_today(_now()), approve)
            row = repo.decide(review_id, "approved" if approve else "rejected", actor["staff_id"], data["comment"])
            if row is None:
                raise ConcurrentUpdate("the review was decided meanwhile")
            uow.publish("customer.reviewed", events.reviewed(row, review))
            return review_out.dump(row)

        name = "approve_review" if approve else "reject_review"
        return self._command(name, request_id, {"actor": actor, "review_id": review_id, "decision": data}, run)

    @rpc
    def list_reviews(self, *, actor, customer_id, limit=None, cursor=None):
        return self._customer_list(actor, customer_id, limit, cursor, ReviewRepository, "submitted_at",
                                   review_out.dump)

    @rpc
    def check_quotable(self, *, customer_id, as_of=None):
        """FR-14: may this customer be quoted? Only with an approved review valid on `as_of`
        (default today, Asia/Shanghai)."""
        if as_of is None:
            today = domain.local_today(_now())
        else:
            try:
                today = date.fromisoformat(str(as_of))
            except ValueError:
                raise FieldInvalid("as_of", "an ISO 8601 date") from None
        with self.db.transaction() as uow:
            customer = CustomerRepository(uow).get(_uuid(customer_id, "customer_id"), contacts=False)
            if customer is None:
                raise CustomerNotFound(f"customer {customer_id} not found")
            approved = ReviewRepository(uow).approved(customer["id"])
        ok, reason, review = domain.quotable(approved, today)
        return {"customer_id": str(customer["id"]), "quotable": ok, "reason": reason,
                "review": review_out.dump(review) if review else None}

    # == visits (FR-23–FR-27, FR-29) ===============================================================
    @rpc
    def plan_visit(self, *, request_id, actor, visit):
        """FR-23: a visit plan with its objectives, waiting for the manager's approval (`planned`);
        FR-29: a re-visit carries the recent tracking report."""
        actor = load_actor(actor)
        data = load(visit_input, visit)

        def run(uow):
            customer = self._customer(uow, actor, data["customer_id"])
            rep = StaffRepository(uow).get(actor["staff_id"])
            if rep is None:
                raise StaffNotFound("the acting staff member is not recorded in the org chart")
            planned_return_at = domain.check_plan(
                data["planned_at"], data["planned_return_at"], _now(),
                CustomerRepository(uow).had_logged_visit(customer["id"]), data["tracking_report"])
            row = VisitRepository(uow).add(dict(
                data, id=uuid.uuid4(), number=uow.next_number("VIS", _now().year), customer_id=customer["id"],
                rep_id=rep["id"], rep_team=rep["team"], planned_return_at=planned_return_at))
            return visit_out.dump(row)

        return self._command("plan_visit", request_id, {"actor": actor, "visit": data}, run)

    @rpc
    def get_visit(self, *, actor, visit_id):
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            return visit_out.dump(self._visit(uow, actor, visit_id))

    @staticmethod
    def _visit(uow, actor, visit_id):
        return _scoped(VisitRepository(uow), actor, visit_id, "visit_id", VisitNotFound)

    def _visit_step(self, name, request_id, actor, visit_id, payload, step, after=None):
        """Load the visit the actor may see, let `step(uow, actor, visit, now)` decide (it returns
        the new state and the values to set), apply that as a guarded move, then `after(uow, row)`
        (e.g. publish), and answer the visit."""
        actor = load_actor(actor)

        def run(uow):
            visit = self._visit(uow, actor, visit_id)
            to_state, values = step(uow, actor, visit, _now())
            repo = VisitRepository(uow)
            if not repo.move(visit["id"], visit["state"], to_state, **values):
                raise ConcurrentUpdate("the visit changed meanwhile; read it again")
            row = repo.get(visit["id"])
            if after is not None:
                after(uow, row)
            return visit_out.dump(row)

        return self._command(name, request_id, dict(payload, actor=actor, visit_id=str(visit_id)), run)

    @rpc
    def approve_visit(self, *, request_id, actor, visit_id, comment=None):
        """FR-23: the rep's manager (anyone up their chain) or a director approves the plan."""
        data = load(decision_input, {"comment": comment})

        def step(uow, actor, visit, now):
            chain = [m["id"] for m in StaffRepository(uow).chain(visit["rep_id"])]
            domain.check_visit_approver(actor, visit, chain)
            return domain.visit_move(visit["state"], "approve"), {
                "approved_by": actor["staff_id"], "approved_at": now, "decision_comment": data["comment"],
                "log_due_by": domain.log_due_by(visit["planned_at"], workdays.deadline_after_working_days)}

        return self._visit_step("approve_visit", request_id, actor, visit_id, data, step)

    @rpc
    def reject_visit(self, *, request_id, actor, visit_id, comment):
        data = load(reject_input, {"comment": comment})

        def step(uow, actor, visit, now):
            chain = [m["id"] for m in StaffRepository(uow).chain(visit["rep_id"])]
            domain.check_visit_approver(actor, visit, chain)
            return domain.visit_move(visit["state"], "reject"), {
                "approved_by": actor["staff_id"], "decision_comment": data["comment"]}

        return self._visit_step("reject_visit", request_id, actor, visit_id, data, step)

    @rpc
    def cancel_visit(self, *, request_id, actor, visit_id, reason):
        data = load(cancel_input, {"reason": reason})

        def step(uow, actor, visit, now):
            domain.check_visit_actor(actor, visit, "cancel it")
            return domain.visit_move(visit["state"], "cancel"), {"decision_comment": data["reason"]}

        return self._visit_step("cancel_visit", request_id, actor, visit_id, data, step)

    @rpc
    def check_out_visit(self, *, request_id, actor, visit_id):
        """The rep leaves for an approved visit (FR-23); the log is due two working days after."""

        def step(uow, actor, visit, now):
            domain.check_visit_actor(actor, visit, "check out")
            return domain.visit_move(visit["state"], "check_out"), {
                "checked_out_at": now, "log_due_by": domain.log_due_by(now, workdays.deadline_after_working_days)}

        return self._visit_step("check_out_visit", request_id, actor, visit_id, {}, step)

    @rpc
    def check_in_visit(self, *, request_id, actor, visit_id):
        def step(uow, actor, visit, now):
            domain.check_visit_actor(actor, visit, "check in")
            return domain.visit_move(visit["state"], "check_in"), {"checked_in_at": now}

        return self._visit_step("check_in_visit", request_id, actor, visit_id, {}, step)

    @rpc
    def report_visit_delay(self, *, request_id, actor, visit_id, expected_return_at, reason):
        """FR-24: not back at the planned time: the rep tells the manager when they will be."""
        data = load(delay_input, {"expected_return_at": expected_return_at, "reason": reason})

        def step(uow, actor, visit, now):
            domain.check_visit_actor(actor, visit, "report a delay")
            domain.check_delay(data["expected_return_at"], now)
            return domain.visit_move(visit["state"], "report_delay"), {
                "expected_return_at": data["expected_return_at"], "delay_reason": data["reason"],
                "return_overdue_at": None}

        return self._visit_step("report_visit_delay", request_id, actor, visit_id, data, step)

    @rpc
    def log_visit(self, *, request_id, actor, visit_id, log):
        """FR-25/27: the minutes of an approved visit; due by the end of the second working day
        after the visit (Chinese calendar), else flagged late. Counts as contact (FR-10)."""
        data = load(visit_log_input, log)

        def step(uow, actor, visit, now):
            to_state = domain.visit_move(visit["state"], "log")
            domain.check_visit_actor(actor, visit, "log it")
            domain.check_log(visit, data["visited_at"], now)
            due = domain.log_due_by(data["visited_at"], workdays.deadline_after_working_days)
            customer = CustomerRepository(uow).get(visit["customer_id"], contacts=False)
            self._mark_contact(uow, customer, data["visited_at"])
            return to_state, {"visited_at": data["visited_at"], "logged_at": now, "log_due_by": due,
                              "late": now > due, "summary": data["summary"], "next_step": data["next_step"]}

        def publish(uow, row):
            uow.publish("visit.logged", events.visit_logged(row))

        return self._visit_step("log_visit", request_id, actor, visit_id, data, step, after=publish)

    @rpc
    def list_visits(self, *, actor, filters=None, limit=None, cursor=None):
        def bounds(found):
            start, end = found.pop("from_"), found.pop("to")
            return ((domain.local_range(start, start)[0] if start else None,
                     domain.local_range(end + timedelta(days=1), end)[0] if end else None),)

        return self._list(actor, visit_filters, filters, limit, cursor, VisitRepository, visit_out.dump,
                          key=_by_time("planned_at"), more=bounds)

    @rpc
    def visit_week(self, *, actor, week=None, team=None):
        """FR-26: logged visits per rep in an ISO week (default: this week) against the standard 10."""
        actor = load_actor(actor)
        week = week or domain.iso_week(_now())
        monday, next_monday = domain.week_dates(week)
        start, end = domain.local_range(monday, next_monday)
        with self.db.transaction() as uow:
            rows = VisitRepository(uow).week(_visibility(actor, pool=False), start, end, team)
        standard = domain.VISIT_WEEKLY_STANDARD
        items = [dict(row, standard=standard, shortfall=max(0, standard - row["visits"]),
                      met=row["visits"] >= standard) for row in rows]
        return {"week": week, "standard": standard, "items": [week_row_out.dump(item) for item in items]}

    @rpc
    def run_visit_deadlines(self, *, as_of=None):
        """FR-24/27 job, on demand: flag visits whose log is overdue and reps not back in time."""
        return self._visit_deadlines(_as_of(as_of))

    @timer(interval=JOB_INTERVAL)
    def visit_deadlines_job(self):
        self._visit_deadlines(_now())

    def _visit_deadlines(self, as_of):
        logs, returns = 0, 0
        while True:
            with self.db.transaction() as uow:
                repo = VisitRepository(uow)
                flagged = repo.claim_log_overdue(as_of, JOB_BATCH)
                overdue = repo.claim_return_overdue(as_of, JOB_BATCH)
                for row in overdue:
                    uow.publish("visit.return_overdue", events.visit_return_overdue(row, as_of))
            logs, returns = logs + len(flagged), returns + len(overdue)
            if len(flagged) < JOB_BATCH and len(overdue) < JOB_BATCH:
                break
        return {"as_of": as_of.isoformat(), "log_overdue": logs, "return_overdue": returns}

    # == opportunities (FR-37–FR-39) ================================================================
    @rpc
    def create_opportunity(self, *, request_id, actor, opportunity):
        """FR-37: an opportunity on a customer the actor may see; the customer's owner follows it
        up (FR-39), or the actor for a customer still in the pool."""
        actor = load_actor(actor)
        data = load(opportunity_input, opportunity)

        def run(uow):
            customer = self._customer(uow, actor, data["customer_id"])
            owner_id, owner_team = customer["owner_id"], customer["owner_team"]
            if owner_id is None:
                owner_id, owner_team = actor["staff_id"], actor.get("team")
            row = OpportunityRepository(uow).add(dict(
                data, id=uuid.uuid4(), number=uow.next_number("OPP", _now().year), customer_id=customer["id"],
                owner_id=owner_id, owner_team=owner_team, created_by=actor["staff_id"]))
            return opportunity_out.dump(row)

        return self._command("create_opportunity", request_id, {"actor": actor, "opportunity": data}, run)

    @staticmethod
    def _opportunity(uow, actor, opportunity_id):
        return _scoped(OpportunityRepository(uow), actor, opportunity_id, "opportunity_id", OpportunityNotFound)

    @rpc
    def get_opportunity(self, *, actor, opportunity_id):
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            return opportunity_out.dump(self._opportunity(uow, actor, opportunity_id))

    @rpc
    def update_opportunity(self, *, request_id, actor, opportunity_id, changes):
        """FR-38/39: stage (one forward at a time, or back), probability, amount, priority, plan."""
        actor = load_actor(actor)
        data = load(opportunity_changes, changes)

        def run(uow):
            current = self._opportunity(uow, actor, opportunity_id)
            if current["stage"] in domain.CLOSED_STAGES:
                raise domain.InvalidState(f"the opportunity is {current['stage']}")
            if "stage" in data:  # qualifying needs a priority: the one given now or the one set before
                domain.check_stage_move(dict(current, priority=data.get("priority", current["priority"])),
                                        data["stage"])
            changed = {k: v for k, v in data.items() if current[k] != v}
            repo = OpportunityRepository(uow)
            if changed and not repo.update(current["id"], current["version"], changed):
                raise ConcurrentUpdate("the opportunity changed meanwhile; read it again")
            return opportunity_out.dump(repo.get(current["id"]))

        return self._command("update_opportunity", request_id,
                             {"actor": actor, "opportunity_id": str(opportunity_id), "changes": data}, run)

    @rpc
    def close_opportunity(self, *, request_id, actor, opportunity_id, outcome, reason=None, order_id=None):
        """FR-37–39: won (linking the order) or lost (with the reason)."""
        actor = load_actor(actor)
        data = load(close_input, {"outcome": outcome, "reason": reason, "order_id": order_id})

        def run(uow):
            current = self._opportunity(uow, actor, opportunity_id)
            probability = domain.check_close(current, data["outcome"], data["reason"], data["order_id"])
            repo = OpportunityRepository(uow)
            if not repo.update(current["id"], current["version"], {
                    "stage": data["outcome"], "probability": probability, "reason": data["reason"],
                    "order_id": data["order_id"], "closed_at": _now(), "closed_by": actor["staff_id"]}):
                raise ConcurrentUpdate("the opportunity changed meanwhile; read it again")
            row = repo.get(current["id"])
            uow.publish(f"opportunity.{data['outcome']}", events.opportunity_closed(row))
            return opportunity_out.dump(row)

        return self._command("close_opportunity", request_id,
                             {"actor": actor, "opportunity_id": str(opportunity_id), "close": data}, run)

    @rpc
    def list_opportunities(self, *, actor, filters=None, limit=None, cursor=None):
        return self._list(actor, opportunity_filters, filters, limit, cursor,
                          OpportunityRepository, opportunity_out.dump)

    # == proposals and tenders (FR-40, FR-41) =====================================================
    @rpc
    def create_proposal(self, *, request_id, actor, proposal):
        """FR-40: a proposal (or, FR-41, a tender offer with the tender's closing time) drafted for a
        qualified, open opportunity; it belongs to the opportunity's owner."""
        actor = load_actor(actor)
        data = load(proposal_input, proposal)

        def run(uow):
            opportunity = self._opportunity(uow, actor, data["opportunity_id"])
            domain.check_proposal_opportunity(opportunity)
            domain.check_tender_window(data["kind"], data["closes_at"], _now())
            row = ProposalRepository(uow).add(dict(
                data, id=uuid.uuid4(), number=uow.next_number("PRP", _now().year), opportunity_id=opportunity["id"],
                customer_id=opportunity["customer_id"], owner_id=opportunity["owner_id"],
                owner_team=opportunity["owner_team"], created_by=actor["staff_id"]))
            return self._proposal_out(uow, row)

        return self._command("create_proposal", request_id, {"actor": actor, "proposal": data}, run)

    @staticmethod
    def _proposal(uow, actor, proposal_id):
        return _scoped(ProposalRepository(uow), actor, proposal_id, "proposal_id", ProposalNotFound)

    @staticmethod
    def _proposal_out(uow, row):
        return proposal_detail_out.dump(dict(row, steps=ProposalRepository(uow).steps(row["id"])))

    @rpc
    def get_proposal(self, *, actor, proposal_id):
        """One proposal with every step of every round (who, when, what, which revision)."""
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            return self._proposal_out(uow, self._proposal(uow, actor, proposal_id))

    @rpc
    def list_proposals(self, *, actor, filters=None, limit=None, cursor=None):
        return self._list(actor, proposal_filters, filters, limit, cursor,
                          ProposalRepository, proposal_out.dump)

    def _proposal_step(self, name, request_id, actor, proposal_id, payload, step):
        """Load the proposal the actor may see; `step(uow, actor, proposal, now)` checks the rule and
        returns (action, comment, values); the move is guarded by the version read, and kept."""
        actor = load_actor(actor)

        def run(uow):
            proposal = self._proposal(uow, actor, proposal_id)
            action, comment, values = step(uow, actor, proposal, _now())
            to_state = domain.proposal_move(proposal["state"], action)
            repo = ProposalRepository(uow)
            values.setdefault("revision", domain.next_revision(proposal, action))
            if not repo.move(proposal, to_state, action, actor["staff_id"], comment, **values):
                raise ConcurrentUpdate("the proposal changed meanwhile; read it again")
            return self._proposal_out(uow, repo.get(proposal["id"]))

        return self._command(name, request_id, dict(payload, actor=actor, proposal_id=str(proposal_id)), run)

    @rpc
    def revise_proposal(self, *, request_id, actor, proposal_id, changes):
        """FR-40 "modify": the owner edits a draft, or starts the next round (revision + 1) of a
        proposal the customer turned down. Nothing approved or sent is edited in place."""
        data = load(proposal_changes, changes)

        def step(uow, actor, proposal, now):
            domain.check_proposal_owner(actor, proposal, "modify")
            if "closes_at" in data:
                domain.check_tender_window(proposal["kind"], data["closes_at"], now)
            values = dict(data)
            if proposal["state"] == "rejected":  # a new round: the last round's review and answer are in its steps
                values.update(reviewed_by=None, reviewed_at=None, review_comment=None, submitted_at=None,
                              responded_at=None, response=None)
            return "revise", None, values

        return self._proposal_step("revise_proposal", request_id, actor, proposal_id, {"changes": data}, step)

    @rpc
    def submit_proposal(self, *, request_id, actor, proposal_id):
        """FR-40: the owner puts the draft to the internal proposal review."""

        def step(uow, actor, proposal, now):
            domain.check_proposal_owner(actor, proposal, "submit")
            domain.check_tender_open(proposal, now)
            return "submit", None, {}

        return self._proposal_step("submit_proposal", request_id, actor, proposal_id, {}, step)

    def _review(self, name, request_id, actor, proposal_id, action, comment):
        data = load(decision_input if action == "approve" else reject_input, {"comment": comment})

        def step(uow, actor, proposal, now):
            chain = [m["id"] for m in StaffRepository(uow).chain(proposal["owner_id"])]
            domain.check_proposal_reviewer(actor, proposal, chain)
            return action, data["comment"], {"reviewed_by": actor["staff_id"], "reviewed_at": now,
                                             "review_comment": data["comment"]}

        return self._proposal_step(name, request_id, actor, proposal_id, data, step)

    @rpc
    def approve_proposal(self, *, request_id, actor, proposal_id, comment=None):
        """FR-40 internal review: the owner's manager (up the chain) or a director approves."""
        return self._review("approve_proposal", request_id, actor, proposal_id, "approve", comment)

    @rpc
    def reject_proposal(self, *, request_id, actor, proposal_id, comment):
        """FR-40 internal review: refused with the reviewer's comment, back to draft to modify."""
        return self._review("reject_proposal", request_id, actor, proposal_id, "reject", comment)

    @rpc
    def send_proposal(self, *, request_id, actor, proposal_id):
        """FR-40: the approved proposal goes to the customer (a tender's offer before it closes,
        FR-41); the opportunity is then at least at its proposal stage."""

        def step(uow, actor, proposal, now):
            domain.check_proposal_owner(actor, proposal, "send")
            domain.check_tender_open(proposal, now)
            self._advance_opportunity(uow, proposal, "qualified", "proposal")
            return "send", None, {"submitted_at": now}

        return self._proposal_step("send_proposal", request_id, actor, proposal_id, {}, step)

    @rpc
    def record_proposal_response(self, *, request_id, actor, proposal_id, outcome, comment=None):
        """FR-40 "accepted?": yes — the opportunity moves on to negotiation; no (with the customer's
        reason) — the proposal is rejected and its owner modifies it for the next round."""
        data = load(proposal_response_input, {"outcome": outcome, "comment": comment})

        def step(uow, actor, proposal, now):
            domain.check_proposal_owner(actor, proposal, "record the customer's answer to")
            if data["outcome"] == "accepted":
                self._advance_opportunity(uow, proposal, "proposal", "negotiation")
            return ("accept" if data["outcome"] == "accepted" else "decline"), data["comment"], {
                "responded_at": now, "response": data["comment"] or "accepted"}

        return self._proposal_step("record_proposal_response", request_id, actor, proposal_id, data, step)

    @staticmethod
    def _advance_opportunity(uow, proposal, from_stage, to_stage):
        """The pipeline follows the proposal: one stage forward when it is still at `from_stage`."""
        repo = OpportunityRepository(uow)
        opportunity = repo.get(proposal["opportunity_id"])
        domain.check_proposal_opportunity(opportunity)
        if opportunity["stage"] == from_stage and not repo.update(opportunity["id"], opportunity["version"],
                                                                  {"stage": to_stage}):
            raise ConcurrentUpdate("the opportunity changed meanwhile; try again")

    # == escalations and guidance (FR-28, FR-30) ==================================================
    @rpc
    def escalate_customer(self, *, request_id, actor, customer_id, escalation):
        """FR-28: the owner escalates a customer they expect to be hard to win to their manager for a
        joint approach; guidance is due by the end of the next working day (FR-30)."""
        actor = load_actor(actor)
        data = load(escalation_input, escalation)

        def run(uow):
            customer = self._customer(uow, actor, customer_id)
            domain.check_escalation_raiser(actor, customer)
            repo, now = EscalationRepository(uow), _now()
            row = repo.add(dict(
                data, id=uuid.uuid4(), number=uow.next_number("ESC", now.year), customer_id=customer["id"],
                owner_id=customer["owner_id"], owner_team=customer["owner_team"], raised_by=actor["staff_id"],
                guidance_due_by=workdays.deadline_after_working_days(now, domain.GUIDANCE_WORKING_DAYS)))
            if row is None:
                current = repo.open_for(customer["id"])
                raise EscalationOpen(f"the customer is already escalated ({current['number']}): add to it",
                                     escalation_id=str(current["id"]))
            return self._escalation_out(uow, row, now)

        return self._command("escalate_customer", request_id,
                             {"actor": actor, "customer_id": str(customer_id), "escalation": data}, run)

    @staticmethod
    def _escalation(uow, actor, escalation_id):
        return _scoped(EscalationRepository(uow), actor, escalation_id, "escalation_id", EscalationNotFound)

    @staticmethod
    def _escalation_out(uow, row, now):
        return escalation_detail_out.dump(dict(row, notes=EscalationRepository(uow).notes(row["id"]),
                                               guidance_overdue=domain.guidance_overdue(row, now)))

    @rpc
    def get_escalation(self, *, actor, escalation_id):
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            return self._escalation_out(uow, self._escalation(uow, actor, escalation_id), _now())

    @rpc
    def list_escalations(self, *, actor, filters=None, limit=None, cursor=None):
        """Escalations the actor may see; `state=open` or `overdue=true` is a manager's to-do (FR-30)."""
        now = _now()
        return self._list(actor, escalation_filters, filters, limit, cursor,
                          EscalationRepository,
                          lambda row: escalation_out.dump(dict(row, guidance_overdue=domain.guidance_overdue(row, now))),
                          more=lambda found: (now,))

    @rpc
    def note_escalation(self, *, request_id, actor, escalation_id, note):
        """FR-30: the owner's feedback, or the manager's guidance (the escalation is then `guided`
        and the next guidance is due by the end of the next working day)."""
        actor = load_actor(actor)
        data = load(note_input, {"note": note})

        def run(uow):
            escalation = self._escalation(uow, actor, escalation_id)
            domain.check_escalation_open(escalation)
            repo, now = EscalationRepository(uow), _now()
            if str(escalation["owner_id"]) == actor["staff_id"]:
                kind, to_state, values = "feedback", escalation["state"], {}
            else:
                chain = [m["id"] for m in StaffRepository(uow).chain(escalation["owner_id"])]
                domain.check_guide(actor, escalation, chain)
                kind, to_state = "guidance", "guided"
                values = {"guidance_due_by": workdays.deadline_after_working_days(now, domain.GUIDANCE_WORKING_DAYS)}
            if not repo.move(escalation, to_state, **values):
                raise ConcurrentUpdate("the escalation changed meanwhile; read it again")
            repo.note(escalation["id"], actor["staff_id"], kind, data["note"])
            return self._escalation_out(uow, repo.get(escalation["id"]), now)

        return self._command("note_escalation", request_id,
                             {"actor": actor, "escalation_id": str(escalation_id), "note": data}, run)

    @rpc
    def close_escalation(self, *, request_id, actor, escalation_id, outcome):
        """The owner or their manager closes it with the outcome (won over, handed over, given up)."""
        actor = load_actor(actor)
        data = load(outcome_input, {"outcome": outcome})

        def run(uow):
            escalation = self._escalation(uow, actor, escalation_id)
            domain.check_escalation_open(escalation)
            if str(escalation["owner_id"]) != actor["staff_id"]:
                domain.check_guide(actor, escalation,
                                   [m["id"] for m in StaffRepository(uow).chain(escalation["owner_id"])])
            repo, now = EscalationRepository(uow), _now()
            if not repo.move(escalation, "closed", outcome=data["outcome"], closed_by=actor["staff_id"], closed_at=now):
                raise ConcurrentUpdate("the escalation changed meanwhile; read it again")
            return self._escalation_out(uow, repo.get(escalation["id"]), now)

        return self._command("close_escalation", request_id,
                             {"actor": actor, "escalation_id": str(escalation_id), "outcome": data}, run)

    # == the weekly check of collected records (FR-05) ============================================
    @rpc
    def submit_collection(self, *, request_id, actor, week=None):
        """FR-05: the rep submits the customer records they collected in an ISO week (default: this
        week) to their manager; a week returned for completion is submitted again."""
        actor = load_actor(actor)
        now = _now()
        week = week or domain.iso_week(now)

        def run(uow):
            monday = domain.check_collection_week(week, now)
            start, end = domain.local_range(monday, monday + timedelta(days=7))
            repo = CollectionRepository(uow)
            current = repo.for_week(actor["staff_id"], week)
            domain.collection_move(current["state"] if current else None, "submit")
            rep = StaffRepository(uow).get(actor["staff_id"])
            done = repo.submit(current, {"id": uuid.uuid4(), "rep_id": actor["staff_id"],
                                         "rep_team": rep["team"] if rep else actor.get("team"), "week": week,
                                         "customer_ids": repo.collected(actor["staff_id"], start, end),
                                         "submitted_at": now})
            if done is None:
                raise ConcurrentUpdate("the week's records were submitted meanwhile; read them again")
            return self._collection_out(uow, repo.get(done["id"]))

        return self._command("submit_collection", request_id, {"actor": actor, "week": week}, run)

    @staticmethod
    def _collection_out(uow, row):
        return collection_detail_out.dump(dict(row, customers=CollectionRepository(uow).records(row["customer_ids"])))

    @rpc
    def get_collection(self, *, actor, collection_id):
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            return self._collection_out(
                uow, _scoped(CollectionRepository(uow), actor, collection_id, "collection_id", CollectionNotFound))

    @rpc
    def list_collections(self, *, actor, filters=None, limit=None, cursor=None):
        """Weekly submissions the actor may see (`state=submitted`: the manager's to-check list)."""
        return self._list(actor, collection_filters, filters, limit, cursor,
                          CollectionRepository, collection_out.dump)

    @rpc
    def check_collection(self, *, request_id, actor, collection_id, outcome, comment=None):
        """FR-05: the rep's manager (or a director) checks the week's records, or returns them with
        what to complete."""
        actor = load_actor(actor)
        data = load(collection_check_input, {"outcome": outcome, "comment": comment})

        def run(uow):
            repo = CollectionRepository(uow)
            collection = _scoped(repo, actor, collection_id, "collection_id", CollectionNotFound)
            domain.check_collection_checker(actor, collection,
                                            [m["id"] for m in StaffRepository(uow).chain(collection["rep_id"])])
            state = domain.collection_move(collection["state"], data["outcome"])
            if not repo.check(collection, state, actor["staff_id"], _now(), data["comment"]):
                raise ConcurrentUpdate("the week's records changed meanwhile; read them again")
            return self._collection_out(uow, repo.get(collection["id"]))

        return self._command("check_collection", request_id,
                             {"actor": actor, "collection_id": str(collection_id), "check": data}, run)

    # == market intelligence (FR-33) ==============================================================
    @rpc
    def report_intelligence(self, *, request_id, actor, report):
        """FR-33: a trend, a customer demand, a competitor's move, a dealer's request, or a problem of
        the sales work, from the field; a problem (or an urgent report) is due an answer from the
        reporter's manager by the end of the next working day."""
        actor = load_actor(actor)
        data = load(intelligence_input, report)

        def run(uow):
            region = data["region"]
            if data["customer_id"] is not None:
                customer = self._customer(uow, actor, data["customer_id"])
                region = region or customer["region"]
            reporter = StaffRepository(uow).get(actor["staff_id"])
            if reporter is None:
                raise FieldInvalid("actor", "the reporter is not on the org chart")
            now = _now()
            urgent = domain.intelligence_urgent(data["kind"], data["urgent"])
            row = IntelligenceRepository(uow).add(dict(
                data, id=uuid.uuid4(), number=uow.next_number("INT", now.year), region=region or reporter["region"],
                urgent=urgent, reported_by=reporter["id"], reporter_team=reporter["team"],
                response_due_by=workdays.deadline_after_working_days(now, domain.ACKNOWLEDGE_WORKING_DAYS)
                if urgent else None))
            return self._intelligence_out(row, now)

        return self._command("report_intelligence", request_id, {"actor": actor, "report": data}, run)

    @staticmethod
    def _intelligence_out(row, now):
        return intelligence_out.dump(dict(row, response_overdue=domain.response_overdue(row, now)))

    @rpc
    def get_intelligence(self, *, actor, report_id):
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            return self._intelligence_out(
                _scoped(IntelligenceRepository(uow), actor, report_id, "report_id", IntelligenceNotFound), _now())

    @rpc
    def list_intelligence(self, *, actor, filters=None, limit=None, cursor=None):
        """Field reports the actor may see (`state=reported&urgent=true`: escalated, waiting for an answer)."""
        now = _now()
        return self._list(actor, intelligence_filters, filters, limit, cursor,
                          IntelligenceRepository,
                          lambda row: intelligence_out.dump(dict(row, response_overdue=domain.response_overdue(row, now))))

    @rpc
    def acknowledge_intelligence(self, *, request_id, actor, report_id, response):
        """FR-33: the reporter's manager (up the chain), a director or marketing answers the report."""
        actor = load_actor(actor)
        data = load(acknowledge_input, {"response": response})

        def run(uow):
            repo = IntelligenceRepository(uow)
            report = _scoped(repo, actor, report_id, "report_id", IntelligenceNotFound)
            domain.check_acknowledgeable(report)
            domain.check_acknowledger(actor, report, [m["id"] for m in StaffRepository(uow).chain(report["reported_by"])])
            now = _now()
            if not repo.acknowledge(report, actor["staff_id"], now, data["response"]):
                raise ConcurrentUpdate("the report changed meanwhile; read it again")
            return self._intelligence_out(repo.get(report["id"]), now)

        return self._command("acknowledge_intelligence", request_id,
                             {"actor": actor, "report_id": str(report_id), "ack": data}, run)

    # == the logistics information sheet (FR-18) ==================================================
    @staticmethod
    def _logistics_out(customer, sheet, now):
        return logistics_out.dump(_logistics_sheet(customer, sheet, now))

    @rpc
    def save_logistics(self, *, request_id, actor, customer_id, sheet):
        """FR-18: record the customer's shipping sheet, or confirm it unchanged: either is the
        month's review (due again a month later)."""
        actor = load_actor(actor)
        data = load(logistics_input, sheet)

        def run(uow):
            customer = self._customer(uow, actor, customer_id)
            now = _now()
            row = LogisticsRepository(uow).save(customer["id"], data, actor["staff_id"], now)
            return self._logistics_out(customer, row, now)

        return self._command("save_logistics", request_id,
                             {"actor": actor, "customer_id": str(customer_id), "sheet": data}, run)

    @rpc
    def get_logistics(self, *, actor, customer_id):
        actor = load_actor(actor)
        with self.db.transaction() as uow:
            customer = self._customer(uow, actor, customer_id)
            return self._logistics_out(customer, LogisticsRepository(uow).get(customer["id"]), _now())

    @rpc
    def list_logistics_due(self, *, actor, as_of=None, limit=None, cursor=None):
        """FR-18: customers in scope whose sheet is missing or not reviewed for a month (the monthly
        to-do of the sales secretary group)."""
        actor = load_actor(actor)
        now = _as_of(as_of)
        limit = pagination.check_limit(limit)
        after = pagination.decode(cursor, 2)
        with self.db.transaction() as uow:
            rows = LogisticsRepository(uow).due(_visibility(actor, pool=False), domain.add_months(now, -1), after,
                                                limit)
        return _page(rows, limit, _by_time("created_at"), lambda row: logistics_out.dump(_logistics_sheet(
            {"id": row["customer_id"], "name": row["customer_name"]}, row if row["reviewed_at"] else None, now)))

    # == aggregates for the gateway's reports (issue 8 joins them) ===================================
    @rpc
    def report_activity(self, *, actor, period_start, period_end, group_by):
        """Per group (rep | team | region | customer): logged visits and late logs, the visit
        standard (10 per rep per week, FR-26) and the share reached, follow-ups, new customers (and
        those entered late, FR-04) against the collection standard (10 per rep per working day, FR-03)."""
        actor = load_actor(actor)
        data = load(report_input, {"period_start": period_start, "period_end": period_end, "group_by": group_by})
        group_by = data["group_by"]
        if group_by == "product":
            raise FieldInvalid("group_by", "the customer service has no figures per product: rep, team, region or customer")
        domain.check_period(data["period_start"], data["period_end"])
        start, end = domain.local_range(data["period_start"], data["period_end"] + timedelta(days=1))
        visibility = _visibility(actor, pool=False)
        with self.db.transaction() as uow:
            reports = ReportRepository(uow)
            figures = {}
            for rows in (reports.visits(visibility, group_by, start, end),
                         reports.follow_ups(visibility, group_by, start, end),
                         reports.new_customers(visibility, group_by, start, end),
                         reports.reps(visibility, group_by)):
                for row in rows:
                    figures.setdefault(row["key"], {}).update({k: v for k, v in row.items() if k != "key"})
            names = reports.names(group_by, [k for k in figures if k is not None])
        working_days = workdays.working_days_between(data["period_start"] - timedelta(days=1), data["period_end"])
        per_rep = group_by != "customer"
        groups = []
        for key, values in figures.items():
            visits, created, reps = values.get("visits", 0), values.get("new_customers", 0), values.get("reps", 0)
            standard = domain.visit_standard(data["period_start"], data["period_end"], reps) if per_rep else None
            collection = domain.collection_standard(working_days, reps) if per_rep else None
            groups.append({
                "key": key, "name": names.get(key), "visits": visits, "late_logs": values.get("late_logs", 0),
                "follow_ups": values.get("follow_ups", 0), "new_customers": created,
                "late_entries": values.get("late_entries", 0), "reps": reps if per_rep else None,
                "visit_standard": str(standard) if standard is not None else None,
                "visits_vs_standard": str(domain.share(visits, standard)) if standard else None,
                "collection_standard": collection,
                "collection_vs_standard": str(domain.share(created, collection)) if collection else None,
            })
        groups.sort(key=lambda g: (g["key"] is None, g["key"] or ""))
        return {"period_start": data["period_start"].isoformat(), "period_end": data["period_end"].isoformat(),
                "group_by": group_by, "groups": groups}

    @rpc
    def report_pipeline(self, *, actor, group_by, period_start=None, period_end=None):
        """Open opportunities per group: count, amount and amount weighted by probability, per
        stage too; optionally only those expected to close within the period."""
        actor = load_actor(actor)
        data = load(pipeline_input, {"group_by": group_by, "period_start": period_start, "period_end": period_end})
        group_by = data["group_by"]
        if group_by == "product":
            raise FieldInvalid("group_by", "opportunities have no product: rep, team, region or customer")
        with self.db.transaction() as uow:
            reports = ReportRepository(uow)
            rows = reports.pipeline(_visibility(actor, pool=False), group_by, data["period_start"], data["period_end"])
            names = reports.names(group_by, {row["key"] for row in rows if row["key"] is not None})
        groups = {}
        for row in rows:
            group = groups.setdefault(row["key"], {"key": row["key"], "name": names.get(row["key"]), "open_count": 0,
                                                   "open_amount": domain.CENT * 0, "weighted_amount": domain.CENT * 0,
                                                   "stages": {}})
            group["open_count"] += row["count"]
            group["open_amount"] += row["amount"]
            group["weighted_amount"] += row["weighted"]
            group["stages"][row["stage"]] = {"count": row["count"], "amount": str(row["amount"]),
                                             "weighted_amount": str(row["weighted"])}
        result = []
        for group in sorted(groups.values(), key=lambda g: (g["key"] is None, g["key"] or "")):
            result.append(dict(group, open_amount=str(group["open_amount"].quantize(domain.CENT)),
                               weighted_amount=str(group["weighted_amount"].quantize(domain.CENT))))
        return {"group_by": group_by, "groups": result}

    # == the customer 360° overview (the gateway asks each service once, issue 8) =====================
    @rpc
    def get_customer_overview(self, *, actor, customer_id, visits=5, opportunities=10):
        """The customer service's part of `GET /customers/{id}/overview`: the customer as
        get_customer answers it (someone else's: NOT_FOUND), its open opportunities (count, amount,
        amount weighted by probability, the newest `opportunities`) and its last `visits` logged
        visits, each as the caller may see them."""
        actor = load_actor(actor)
        visits = _how_many(visits, "visits")
        opportunities = _how_many(opportunities, "opportunities")
        with self.db.autocommit() as uow:  # reads only: no BEGIN, no COMMIT (issue 11)
            row = self._customer(uow, actor, customer_id, contacts=True)
            visibility = _visibility(actor, pool=False)
            overview = OverviewRepository(uow)
            totals, open_rows = overview.open_opportunities(visibility, row["id"], opportunities)
            visit_rows = overview.last_visits(visibility, row["id"], visits)
        return {
            "customer": customer_out.dump(row),
            "open_opportunities": {
                "count": totals["count"], "amount": str(totals["amount"].quantize(domain.CENT)),
                "weighted_amount": str(totals["weighted_amount"].quantize(domain.CENT)),
                "items": [opportunity_out.dump(r) for r in open_rows]},
            "last_visits": [visit_out.dump(r) for r in visit_rows],
        }


def _how_many(value, field, most=50):
    """A small count (1..most) for a part of an answer, else a 422 naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ValidationFailed(f"{field} must be a whole number from 1 to {most}",
                               errors={field: [f"a whole number from 1 to {most}"]})
    return value
