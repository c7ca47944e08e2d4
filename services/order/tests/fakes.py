"""In-process stand-ins for the services the order service calls, with exactly the RPC names,
keyword arguments, answers and errors of docs/INTEGRATION.md: `customer` (org chart, customers,
reviews), `inventory` (reservations, deliveries, loans, returns) and `billing` (credit).

They keep their books in `BOOKS` (module state shared by every container of the test process), so
a test can set them up, make any method refuse, answer late, crash or block, and afterwards assert
exactly which calls arrived and what is still reserved. Loaded by path (tests/conftest.py and the
e2e tests) under the module name `order_fakes`, so there is one BOOKS per process.
"""
import uuid
from decimal import Decimal

import eventlet
from eventlet.event import Event

from shared.entrypoints import rpc
from shared.errors import BusinessRuleViolation, Conflict, NotFound, ValidationFailed

DEFAULT_AUTHORITY = {  # INTEGRATION.md: customer.get_staff defaults by role
    "sales_rep": ("0.05", "0.85"), "sales_manager": ("0.10", "0.80"), "sales_director": ("0.15", "0.70"),
}


class Books:
    def __init__(self):
        self.staff = {}
        self.customers = {}
        self.quotable = {}
        self.stock = {}
        self.reservations = {}
        self.credit_limits = {}
        self.credit = {}
        self.deliveries = {}
        self.loans = {}
        self.received_returns = {}
        self.calls = []
        self.modes = {}
        self.hooks = {}  # "service.method" → a callable run once the fake has decided, before it answers
        self.slow_for = 3.0
        self.entered = Event()
        self.release = Event()

    # -- setting up -----------------------------------------------------------------------------
    def add_staff(self, role, manager=None, team=None, region="East", username=None, **authority):
        staff_id = str(uuid.uuid4())
        discount, price = DEFAULT_AUTHORITY.get(role, ("0.00", "1.00"))
        self.staff[staff_id] = {
            "id": staff_id, "username": username or f"{role}-{staff_id[:6]}", "display_name": f"{role} {staff_id[:4]}",
            "role": role, "manager_id": manager["staff_id"] if manager else None, "team": team, "region": region,
            "active": True, "discount_authority": authority.get("discount_authority", discount),
            "price_authority": authority.get("price_authority", price),
        }
        return {"staff_id": staff_id, "role": role, "username": self.staff[staff_id]["username"], "team": team}

    def add_customer(self, owner, region="East", quotable=True, name=None):
        customer_id = str(uuid.uuid4())
        staff = self.staff.get(owner["staff_id"], {})
        self.customers[customer_id] = {
            "id": customer_id, "name": name or f"Customer {customer_id[:6]}", "owner_id": owner["staff_id"],
            "owner_team": staff.get("team"), "owner_name": staff.get("display_name"), "region": region,
            "tax_id": "91310000MA1FL8XQ3K", "bank_account": None, "status": "potential",
        }
        self.quotable[customer_id] = quotable
        return customer_id

    # -- what happened -----------------------------------------------------------------------------
    def of(self, method):
        return [call for call in self.calls if call["method"] == method]

    def active_reservations(self, order_id=None):
        return [r for r in self.reservations.values()
                if r["status"] in ("held", "committed") and (order_id is None or r["order_id"] == str(order_id))]

    def reserved_credit(self, order_id=None):
        return [c for c in self.credit.values()
                if c["status"] == "reserved" and (order_id is None or c["order_id"] == str(order_id))]

    def _enter(self, service, method, kwargs):
        self.calls.append(dict(kwargs, method=f"{service}.{method}"))
        return self.modes.get(f"{service}.{method}")

    def _after_effect(self, mode):
        """Late or blocked answers: the effect has happened, the caller does not hear of it."""
        if mode == "slow":
            eventlet.sleep(self.slow_for)
        elif mode == "block":
            self.entered.send(True) if not self.entered.ready() else None
            self.release.wait()


BOOKS = Books()


def _crash_or_refuse(mode, refusal):
    if mode == "crash":
        raise ZeroDivisionError("the fake crashed")
    if mode == "refuse":
        raise refusal


class FakeCustomer:
    name = "customer"

    @rpc
    def get_customer(self, *, actor, customer_id):
        mode = BOOKS._enter("customer", "get_customer", {"actor": actor, "customer_id": customer_id})
        _crash_or_refuse(mode, NotFound(f"customer {customer_id} not found"))
        customer = BOOKS.customers.get(str(customer_id))
        role, me = actor.get("role"), str(actor.get("staff_id"))
        visible = customer is not None and (
            role not in ("sales_rep", "sales_manager") or customer["owner_id"] == me
            or (role == "sales_manager" and actor.get("team") and customer["owner_team"] == actor.get("team")))
        if not visible:
            raise NotFound(f"customer {customer_id} not found")
        answer = dict(customer)
        hook = BOOKS.hooks.pop("customer.get_customer", None)
        if hook is not None:
            hook()
        return answer

    @rpc
    def check_quotable(self, *, customer_id):
        mode = BOOKS._enter("customer", "check_quotable", {"customer_id": customer_id})
        _crash_or_refuse(mode, NotFound("no such customer"))
        quotable = BOOKS.quotable.get(str(customer_id), False)
        return {"customer_id": str(customer_id), "quotable": quotable,
                "reason": None if quotable else "no approved review still valid", "review": None}

    @rpc
    def find_approver(self, *, staff_id, relation):
        mode = BOOKS._enter("customer", "find_approver", {"staff_id": staff_id, "relation": relation})
        _crash_or_refuse(mode, Conflict("no approver", code="NO_APPROVER"))
        me = BOOKS.staff.get(str(staff_id))
        found = None
        if me is not None:
            if relation == "direct_manager":
                found = BOOKS.staff.get(me["manager_id"]) if me["manager_id"] else None
            elif relation == "division_head":
                boss = BOOKS.staff.get(me["manager_id"]) if me["manager_id"] else None
                while boss is not None and boss["role"] != "sales_director":
                    boss = BOOKS.staff.get(boss["manager_id"]) if boss["manager_id"] else None
                found = boss or next((s for s in BOOKS.staff.values()
                                      if s["role"] == "sales_director" and s["active"]), None)
            elif relation in ("marketing_director", "product_manager", "general_manager"):
                holders = [s for s in BOOKS.staff.values() if s["role"] == relation and s["active"]]
                found = next((s for s in holders if s["region"] == me["region"]), holders[0] if holders else None)
        if found is None:
            raise Conflict(f"no one holds {relation} for {staff_id}", code="NO_APPROVER", relation=relation)
        return {k: found[k] for k in ("id", "username", "display_name", "role", "team", "region")}

    @rpc
    def get_staff(self, *, staff_id):
        mode = BOOKS._enter("customer", "get_staff", {"staff_id": staff_id})
        _crash_or_refuse(mode, NotFound("no such staff member"))
        staff = BOOKS.staff.get(str(staff_id))
        if staff is None:
            raise NotFound(f"staff member {staff_id} not found")
        return dict(staff)


class FakeInventory:
    name = "inventory"

    @rpc
    def reserve_stock(self, *, reservation_id, order_id, order_number, customer_id, owner_id, owner_team, region,
                      warehouse=None, lines):
        kwargs = dict(reservation_id=reservation_id, order_id=order_id, order_number=order_number,
                      customer_id=customer_id, owner_id=owner_id, owner_team=owner_team, region=region,
                      warehouse=warehouse, lines=lines)
        mode = BOOKS._enter("inventory", "reserve_stock", kwargs)
        for line in lines:
            if set(line) != {"line_id", "sku", "quantity", "unit_price", "vat_rate"}:
                raise ValidationFailed("bad line", errors={"lines": [f"unexpected fields {sorted(line)}"]})
        _crash_or_refuse(mode, BusinessRuleViolation("refused on purpose", code="INSUFFICIENT_STOCK", shortages=[]))
        known = BOOKS.reservations.get(reservation_id)
        if known is None:
            active = BOOKS.active_reservations(order_id)
            if active:
                raise Conflict("the order already holds a reservation", code="RESERVATION_EXISTS")
            wanted = {}
            for line in lines:
                wanted[line["sku"]] = wanted.get(line["sku"], 0) + line["quantity"]
            shortages = [{"sku": sku, "requested": q, "available": BOOKS.stock.get(sku, 0)}
                         for sku, q in sorted(wanted.items()) if BOOKS.stock.get(sku, 0) < q]
            if shortages:
                raise BusinessRuleViolation("not enough stock for " + ", ".join(s["sku"] for s in shortages),
                                            code="INSUFFICIENT_STOCK", shortages=shortages)
            for sku, quantity in wanted.items():
                BOOKS.stock[sku] -= quantity
            known = BOOKS.reservations[reservation_id] = {
                "reservation_id": reservation_id, "order_id": order_id, "lines": wanted, "status": "held",
                "warehouse": warehouse or "WH-1"}
        BOOKS._after_effect(mode)
        return {"reservation_id": reservation_id, "order_id": order_id, "status": known["status"],
                "warehouse": known["warehouse"], "lines": lines}

    @rpc
    def release_reservation(self, *, order_id, reason):
        mode = BOOKS._enter("inventory", "release_reservation", {"order_id": order_id, "reason": reason})
        _crash_or_refuse(mode, Conflict("refused"))
        for reservation in BOOKS.active_reservations(order_id):
            reservation["status"] = "released"
            for sku, quantity in reservation["lines"].items():
                BOOKS.stock[sku] = BOOKS.stock.get(sku, 0) + quantity
        BOOKS._after_effect(mode)
        return {"order_id": order_id, "status": "released"}

    @rpc
    def commit_reservation(self, *, order_id):
        mode = BOOKS._enter("inventory", "commit_reservation", {"order_id": order_id})
        _crash_or_refuse(mode, NotFound(f"order {order_id} has no active reservation"))
        [reservation] = BOOKS.active_reservations(order_id) or [None]
        if reservation is None:
            raise NotFound(f"order {order_id} has no active reservation")
        reservation["status"] = "committed"
        return {"reservation_id": reservation["reservation_id"], "order_id": order_id, "status": "committed"}

    @rpc
    def create_delivery(self, *, request_id, actor, order_id, lines):
        mode = BOOKS._enter("inventory", "create_delivery", {"request_id": request_id, "actor": actor,
                                                             "order_id": order_id, "lines": lines})
        _crash_or_refuse(mode, BusinessRuleViolation("refused", code="DELIVERY_EXCEEDS_RESERVED"))
        if not any(r["status"] == "committed" for r in BOOKS.active_reservations(order_id)):
            # as the real inventory: a delivery note needs the order's reservation committed
            raise BusinessRuleViolation("the reservation is held, not committed", code="RESERVATION_NOT_COMMITTED")
        delivery = BOOKS.deliveries.setdefault(request_id, {"id": str(uuid.uuid5(uuid.UUID(request_id), "dn")),
                                                            "number": f"DN-2026-{len(BOOKS.deliveries) + 1:06d}",
                                                            "order_id": order_id, "status": "pending",
                                                            "lines": lines})
        return dict(delivery)

    @rpc
    def receive_return(self, *, request_id, return_id, return_number, delivery_id, lines):
        mode = BOOKS._enter("inventory", "receive_return", {"request_id": request_id, "return_id": return_id,
                                                            "return_number": return_number,
                                                            "delivery_id": delivery_id, "lines": lines})
        _crash_or_refuse(mode, BusinessRuleViolation("refused", code="RETURN_EXCEEDS_ISSUED"))
        BOOKS.received_returns.setdefault(request_id, {"return_id": return_id, "lines": lines})
        BOOKS._after_effect(mode)
        return {"return_id": return_id, "status": "received", "lines": lines}

    @rpc
    def issue_loan(self, *, request_id, loan_id, loan_number, customer_id, owner_id, owner_team, region, warehouse,
                   lines):
        mode = BOOKS._enter("inventory", "issue_loan", dict(
            request_id=request_id, loan_id=loan_id, loan_number=loan_number, customer_id=customer_id,
            owner_id=owner_id, owner_team=owner_team, region=region, warehouse=warehouse, lines=lines))
        _crash_or_refuse(mode, BusinessRuleViolation("not enough stock", code="INSUFFICIENT_STOCK", shortages=[]))
        loan = BOOKS.loans.get(loan_id)
        if loan is None:
            for line in lines:
                BOOKS.stock[line["sku"]] = BOOKS.stock.get(line["sku"], 0) - line["quantity"]
            loan = BOOKS.loans[loan_id] = {"out": {l["sku"]: l["quantity"] for l in lines}, "requests": {request_id}}
        BOOKS._after_effect(mode)
        return {"loan_id": loan_id, "status": "lent", "lines": lines}

    @rpc
    def return_loan(self, *, request_id, loan_id, lines):
        mode = BOOKS._enter("inventory", "return_loan", {"request_id": request_id, "loan_id": loan_id, "lines": lines})
        _crash_or_refuse(mode, BusinessRuleViolation("does not match", code="LOAN_QUANTITY_MISMATCH"))
        loan = BOOKS.loans[loan_id]
        if request_id not in loan["requests"]:
            loan["requests"].add(request_id)
            for line in lines:
                loan["out"][line["sku"]] -= line["quantity"]
                BOOKS.stock[line["sku"]] = BOOKS.stock.get(line["sku"], 0) + line["quantity"]
        return {"loan_id": loan_id, "status": "returned", "lines": lines}

    @rpc
    def convert_loan(self, *, request_id, loan_id, order_id, order_number, lines):
        mode = BOOKS._enter("inventory", "convert_loan", {"request_id": request_id, "loan_id": loan_id,
                                                          "order_id": order_id, "order_number": order_number,
                                                          "lines": lines})
        for line in lines:
            if set(line) != {"order_line_id", "sku", "quantity", "unit_price", "vat_rate"}:
                raise ValidationFailed("bad line", errors={"lines": [f"unexpected fields {sorted(line)}"]})
        _crash_or_refuse(mode, BusinessRuleViolation("does not match", code="LOAN_QUANTITY_MISMATCH"))
        loan = BOOKS.loans[loan_id]
        if request_id not in loan["requests"]:
            loan["requests"].add(request_id)
            for line in lines:
                loan["out"][line["sku"]] -= line["quantity"]
        delivery_id = str(uuid.uuid5(uuid.UUID(request_id), "conversion"))
        return {"loan_id": loan_id, "order_id": order_id, "delivery_id": delivery_id, "status": "converted"}


class FakeBilling:
    name = "billing"

    @rpc
    def reserve_credit(self, *, reservation_id, order_id, customer_id, amount, override=None):
        mode = BOOKS._enter("billing", "reserve_credit", dict(reservation_id=reservation_id, order_id=order_id,
                                                              customer_id=customer_id, amount=amount,
                                                              override=override))
        _crash_or_refuse(mode, BusinessRuleViolation("refused on purpose", code="CREDIT_LIMIT_EXCEEDED"))
        if not isinstance(amount, str):
            raise ValidationFailed("amount must be a decimal string", errors={"amount": ["not a string"]})
        known = BOOKS.credit.get(reservation_id)
        limit = BOOKS.credit_limits.get(customer_id, Decimal("1000000.00"))
        exposure = sum((c["amount"] for c in BOOKS.credit.values()
                        if c["customer_id"] == customer_id and c["status"] == "reserved"), Decimal("0.00"))
        if known is None:
            if Decimal(amount) > limit - exposure and not override:
                raise BusinessRuleViolation(
                    f"credit limit {limit} exceeded: exposure {exposure}, requested {amount}",
                    code="CREDIT_LIMIT_EXCEEDED", limit=str(limit), exposure=str(exposure), requested=amount)
            known = BOOKS.credit[reservation_id] = {"reservation_id": reservation_id, "order_id": order_id,
                                                    "customer_id": customer_id, "amount": Decimal(amount),
                                                    "status": "reserved", "override": override}
            exposure += Decimal(amount)
        BOOKS._after_effect(mode)
        return {"reservation_id": reservation_id, "order_id": order_id, "status": known["status"],
                "limit": str(limit), "exposure": str(exposure), "available": str(limit - exposure)}

    @rpc
    def release_credit(self, *, order_id, reason):
        mode = BOOKS._enter("billing", "release_credit", {"order_id": order_id, "reason": reason})
        _crash_or_refuse(mode, Conflict("refused"))
        for reservation in BOOKS.reserved_credit(order_id):
            reservation["status"] = "released"
        BOOKS._after_effect(mode)
        return {"order_id": order_id, "status": "released"}
