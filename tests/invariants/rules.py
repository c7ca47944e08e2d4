"""The invariants, as rules over the services' books (each service's `get_books` answer, keyed by
service). Pure functions: `check(books)` returns the violations, one per broken rule and document;
an empty list means the books agree. Each rule names itself, the FR it protects where there is
one, and the document it found wrong.

Rules that need a service's books are skipped when that service's books are missing (a platform
started without it), so the checker also serves a partial platform.
"""
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

OUTBOX_MAX_AGE = 60.0  # seconds an unpublished outbox row may wait
# orders that hold stock and credit until they are invoiced / shipped
HOLDING = ("confirmed", "partially_shipped")
CONFIRMED = ("confirmed", "partially_shipped", "shipped", "invoiced", "paid", "closed")
NOT_CONFIRMED = ("draft", "credit_hold", "cancelled")
OPEN_STOCK = ("held", "committed")


@dataclass(frozen=True)
class Violation:
    rule: str
    fr: str  # "FR-63" or "" where the rule is the design's (DESIGN.md §3/§4), not a requirement's
    document: str
    detail: str

    def __str__(self):
        where = f" ({self.fr})" if self.fr else ""
        return f"{self.rule}{where}: {self.document}: {self.detail}"


def money(value):
    return Decimal(str(value))


# -- inventory alone ----------------------------------------------------------------------------------
def stock_on_hand(books):
    """On hand = receipts − issues + returns ± adjustments (and loans out/back): the movement
    ledger by kind adds up to the stored level; reserved and on loan likewise."""
    for level in books["inventory"]["levels"]:
        item = f"stock {level['sku']}@{level['warehouse']}"
        by_kind = level["on_hand_by_kind"]
        ledger = sum(by_kind.values())
        if ledger != level["on_hand"]:
            parts = " ".join(f"{kind} {delta:+d}" for kind, delta in sorted(by_kind.items()))
            yield Violation("on hand = receipts − issues + returns ± adjustments", "FR-78", item,
                            f"stored on hand {level['on_hand']}, ledger {ledger} ({parts})")
        if level["reserved_ledger"] != level["reserved"]:
            yield Violation("reserved = its ledger", "FR-63", item,
                            f"stored reserved {level['reserved']}, ledger {level['reserved_ledger']}")
        if level["on_loan_ledger"] != level["on_loan"]:
            yield Violation("on loan = its ledger", "FR-98", item,
                            f"stored on loan {level['on_loan']}, ledger {level['on_loan_ledger']}")
        if min(level["on_hand"], level["reserved"], level["on_loan"]) < 0 or level["reserved"] > level["on_hand"]:
            yield Violation("no stock count negative", "", item, f"{level}")


# -- inventory × order ----------------------------------------------------------------------------
def stock_reserved(books):
    """Reserved = what open reservations still hold, and every open reservation is a confirmed
    order's (not shipped in full yet) — nothing else holds stock."""
    orders = {o["id"]: o for o in books["order"]["orders"]}
    held = Counter()
    for reservation in books["inventory"]["reservations"]:
        if reservation["status"] not in OPEN_STOCK:
            continue
        for line in reservation["lines"]:
            held[(line["sku"], reservation["warehouse"])] += line["quantity"] - line["issued"]
        order = orders.get(reservation["order_id"])
        if order is None or order["status"] not in HOLDING:
            yield Violation("reserved = open reservations of confirmed orders and nothing else", "FR-63",
                            f"reservation of {reservation['order_number'] or reservation['order_id']}",
                            f"{reservation['status']} for an order that is "
                            f"{order['status'] if order else 'unknown to the order service'}")
    for level in books["inventory"]["levels"]:
        key = (level["sku"], level["warehouse"])
        if level["reserved"] != held.get(key, 0):
            yield Violation("reserved = open reservations of confirmed orders and nothing else", "FR-63",
                            f"stock {key[0]}@{key[1]}",
                            f"reserved {level['reserved']}, open reservations hold {held.get(key, 0)}")


def order_reservations(books):
    """Every confirmed order has exactly one stock reservation (its lines, its quantities) and one
    credit reservation of its total; an order that is not confirmed holds neither."""
    by_order = defaultdict(list)
    for reservation in books["inventory"]["reservations"]:
        if reservation["status"] not in ("released", "expired"):
            by_order[reservation["order_id"]].append(reservation)
    credit = defaultdict(list)
    for reservation in books["billing"]["credit_reservations"]:
        if reservation["status"] != "released":
            credit[reservation["order_id"]].append(reservation)
    for order in books["order"]["orders"]:
        name = f"order {order['number']}"
        stock, cover = by_order.get(order["id"], []), credit.get(order["id"], [])
        if order["status"] in CONFIRMED and order["kind"] == "sale":
            if len(stock) != 1:
                yield Violation("a confirmed order has exactly its stock reservation", "FR-63", name,
                                f"{order['status']} with {len(stock)} stock reservations")
            else:
                wanted = Counter({line["id"]: line["quantity"] for line in order["lines"] or []})
                got = Counter({line["line_id"]: line["quantity"] for line in stock[0]["lines"]})
                if wanted != got:
                    yield Violation("a confirmed order has exactly its stock reservation", "FR-63", name,
                                    f"order lines {dict(wanted)}, reserved {dict(got)}")
            if len(cover) != 1:
                yield Violation("a confirmed order has exactly its credit reservation", "FR-65", name,
                                f"{order['status']} with {len(cover)} credit reservations")
            elif money(cover[0]["amount"]) != money(order["total"]):
                yield Violation("a confirmed order has exactly its credit reservation", "FR-65", name,
                                f"total {order['total']}, credit reserved {cover[0]['amount']}")
        elif order["status"] in NOT_CONFIRMED:
            if any(r["status"] in OPEN_STOCK for r in stock):
                yield Violation("an order not confirmed holds no stock", "FR-63", name,
                                f"{order['status']} with an open stock reservation")
            if any(r["status"] == "reserved" for r in cover):
                yield Violation("an order not confirmed holds no credit", "FR-65", name,
                                f"{order['status']} with credit reserved")
    known = {o["id"] for o in books["order"]["orders"]}
    for order_id, cover in credit.items():
        if order_id not in known:
            yield Violation("a credit reservation belongs to an order", "FR-65", f"order id {order_id}",
                            f"{len(cover)} credit reservation(s) for an order the order service does not have")


# -- billing × inventory ------------------------------------------------------------------------------
def invoices_cover_issued_goods(books):
    """Every issued invoice covers issued goods, once: each line is a delivery line whose goods
    left the warehouse, and no delivery line is invoiced (net of red invoices) beyond its quantity."""
    issued = {line["id"]: line for d in books["inventory"]["deliveries"] for line in d["lines"]}
    billed = {line["delivery_line_id"]: line for line in books["billing"]["delivery_lines"]}
    net = Counter()
    for invoice in books["billing"]["invoices"]:
        if invoice["status"] != "issued":
            continue
        for line in invoice["lines"] or []:
            if invoice["red"]:
                continue  # its quantity is taken off the blue line it reverses (reversed_quantity)
            net[line["delivery_line_id"]] += line["quantity"] - line["reversed_quantity"]
            if line["delivery_line_id"] not in issued:
                yield Violation("an issued invoice covers issued goods", "FR-81", f"invoice {invoice['number']}",
                                f"a line for delivery line {line['delivery_line_id']} the warehouse never issued")
    for line_id, quantity in net.items():
        line = billed.get(line_id) or {}
        limit = issued.get(line_id, {}).get("quantity", 0)
        if quantity > limit:
            yield Violation("issued goods are invoiced once", "FR-83",
                            f"delivery {line.get('delivery_number') or line_id}",
                            f"{quantity} invoiced of {limit} issued")
    for line_id, line in billed.items():
        source = issued.get(line_id)
        if source is None or source["quantity"] != line["quantity"]:
            yield Violation("billing's delivery lines are the warehouse's", "FR-83",
                            f"delivery {line['delivery_number'] or line['delivery_id']}",
                            f"billing has {line['quantity']}, the warehouse issued "
                            f"{source['quantity'] if source else 'nothing'} on line {line_id}")


# -- billing alone --------------------------------------------------------------------------------------
def customer_balance(books):
    """Customer balance = invoices − red invoices − allocated receipts, from the documents, equals
    the open receivables billing computes (what credit exposure counts)."""
    billing = books["billing"]
    computed = defaultdict(Decimal)
    for invoice in billing["invoices"]:
        if invoice["status"] == "issued":
            computed[invoice["customer_id"]] += money(invoice["total"]) * (-1 if invoice["red"] else 1)
    for allocation in billing["allocations"]:
        if not allocation["reversed"]:
            computed[allocation["customer_id"]] -= money(allocation["amount"])
    for balance in billing["balances"]:
        stated = money(balance["open_receivables"])
        expected = computed.get(balance["customer_id"], Decimal("0.00"))
        if stated != expected:
            yield Violation("customer balance = invoices − red invoices − allocated receipts", "FR-72",
                            f"customer {balance['customer_id']}",
                            f"billing says {stated}, the documents say {expected}")


# -- every service ----------------------------------------------------------------------------------------
def document_numbers(books):
    """No document number repeated or skipped: per prefix and year the numbers are 1..last."""
    for service, part in books.items():
        for seq in part["numbers"]:
            name = f"{service} {seq['prefix']}-{seq['year']}"
            if seq["count"] != seq["distinct"]:
                yield Violation("no document number repeated", "", name,
                                f"{seq['count'] - seq['distinct']} repeated among {seq['count']}")
            last = seq["last_value"] or 0
            if seq["distinct"] != last or (seq["count"] and (seq["lowest"] != 1 or seq["highest"] != last)):
                yield Violation("no document number skipped", "", name,
                                f"{seq['distinct']} numbers in use ({seq['lowest']}..{seq['highest']}), "
                                f"sequence at {seq['last_value']}")


def sagas_finished(books):
    """No saga left half-way: none running or compensating, no order still confirming."""
    for saga in books["order"]["sagas"]:
        if saga["state"] in ("running", "compensating"):
            yield Violation("no saga left half-way", "FR-61", f"saga {saga['kind']} {saga['id']}",
                            f"{saga['state']} at {saga['step']} (stock {saga['stock_status']}, credit "
                            f"{saga['credit_status']}), idle {saga['idle_seconds']:.0f} s")
    for order in books["order"]["orders"]:
        if order["status"] == "confirming":
            yield Violation("no saga left half-way", "FR-61", f"order {order['number']}",
                            f"still confirming, idle {order['idle_seconds']:.0f} s")


def outbox_drained(books, max_age=OUTBOX_MAX_AGE):
    """No outbox row older than a minute."""
    for service, part in books.items():
        if part["outbox"]["pending"] and part["outbox"]["oldest_age_seconds"] > max_age:
            yield Violation("no outbox row older than a minute", "", f"{service} outbox",
                            f"{part['outbox']['pending']} pending, oldest {part['outbox']['oldest_age_seconds']:.0f} s")


def parked_alerted(books):
    """No message parked without an alert: the process reports every parked row in
    sales_failed_messages_unresolved, which SalesFailedMessages alerts on."""
    for service, part in books.items():
        parked = len(part["parked"])
        gauge = part["parked_gauge"]
        if parked and (gauge is None or gauge < parked):
            for row in part["parked"]:
                yield Violation("no message parked without an alert", "", f"{service} {row['handler']}",
                                f"event {row['event_type']} {row['event_id']} parked ({row['error'][:120]}); "
                                f"sales_failed_messages_unresolved says {gauge}")


def nothing_parked(books):
    """Not a rule of the platform (parking is how it keeps a poison message), but of a fault run:
    every message was handled in the end."""
    for service, part in books.items():
        for row in part["parked"]:
            yield Violation("nothing parked after the run", "", f"{service} {row['handler']}",
                            f"event {row['event_type']} {row['event_id']}: {row['error'][:200]}")


RULES = [
    (stock_on_hand, ("inventory",)),
    (stock_reserved, ("inventory", "order")),
    (order_reservations, ("inventory", "order", "billing")),
    (invoices_cover_issued_goods, ("inventory", "billing")),
    (customer_balance, ("billing",)),
    (document_numbers, ()),
    (sagas_finished, ("order",)),
    (outbox_drained, ()),
    (parked_alerted, ()),
]


def check(books, strict=False):
    """Every rule over `books` ({service: its get_books answer}); `strict` adds nothing_parked."""
    violations = []
    for rule, needs in RULES + ([(nothing_parked, ())] if strict else []):
        if all(name in books for name in needs):
            violations.extend(rule(books))
    return violations
