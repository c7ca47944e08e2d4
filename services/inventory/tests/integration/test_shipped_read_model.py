"""Issue 11: the shipped and returned figures of the sales performance report (FR-90, FR-120–
FR-123) per rep, team, region and customer are summed from shipped_daily, kept by the same
transactions as the facts. After goods issued (twice at once), returns, a customer moved to another
owner and region, and an event delivered twice, the read model must give exactly what the delivery
notes, return receipts and their lines say."""
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from inventory.db import Reports
from shared import access

TZ = ZoneInfo("Asia/Shanghai")
DIRECTOR = {"staff_id": str(uuid.uuid4()), "role": "sales_director", "username": "head", "team": None}


def rid():
    return str(uuid.uuid4())


class Uow:
    def __init__(self, conn):
        self.conn = conn

    def all(self, sql, params):
        cur = self.conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()


def assert_read_model_equals_the_documents(inv, *actors):
    reports = Reports(Uow(inv.conn))
    today = datetime.now(TZ).date()
    start = datetime.combine(today, time(), tzinfo=TZ)
    checked = 0
    for begin, end in ((start, start + timedelta(days=1)), (start - timedelta(days=30), start + timedelta(days=30)),
                       (start + timedelta(days=1), start + timedelta(days=2))):
        for column in ("owner_id", "owner_team", "region", "customer_id"):
            for actor in (DIRECTOR,) + actors:
                condition, params = access.scope(actor).sql("d.owner_id", "d.owner_team")
                kwargs = dict(column=column, begin=begin, end=end, scope_sql=condition, scope_params=params)
                model = [sorted((dict(r) for r in part), key=lambda r: str(r["key"]))
                         for part in reports.shipped(**kwargs)]
                lines = [sorted((dict(r) for r in part), key=lambda r: str(r["key"]))
                         for part in reports.shipped_from_the_lines(**kwargs)]
                assert model == lines, (column, begin, model, lines)
                checked += len(lines[0]) + len(lines[1])
    return checked


def test_fr90_fr120_issue11_the_shipped_read_model_equals_the_documents_after_every_fact(
        inv, who, publish_event, wait_for, concurrently):
    rep_a, rep_b = who.new("sales_rep", "East"), who.new("sales_rep", "West")
    motor, cable = inv.stocked(50), inv.stocked(50)
    a = inv.confirmed_order([(motor, 6, "100.00"), (cable, 4, "12.50")], owner=rep_a)
    b = inv.confirmed_order([(motor, 2, "100.00")], owner=rep_b)
    notes = [inv.deliver(a["order_id"], [(motor, 3), (cable, 4)]), inv.deliver(a["order_id"], [(motor, 3)]),
             inv.deliver(b["order_id"], [(motor, 2)])]
    assert assert_read_model_equals_the_documents(inv, rep_a, rep_b) == 0  # nothing issued yet
    # two notes of the same customer issued at once, and one more
    results = concurrently(inv.rpc.issue_goods, [{"request_id": rid(), "actor": who.keeper, "delivery_id": n["id"]}
                                                 for n in notes[:2]])
    assert not [r for r in results if isinstance(r, Exception)], results
    inv.issue(notes[2]["id"])
    assert assert_read_model_equals_the_documents(inv, rep_a, rep_b) > 0
    # a return received (and the same request again: nothing more)
    request_id, return_id = rid(), rid()
    for _ in range(2):
        inv.rpc.receive_return(request_id=request_id, return_id=return_id, delivery_id=notes[0]["id"],
                               lines=[{"sku": motor, "quantity": 2}])
    assert_read_model_equals_the_documents(inv, rep_a, rep_b)
    # the customer moves to another owner and team (the event twice), then to another region
    moved = {"customer_id": a["customer_id"], "owner_id": rep_b["staff_id"], "owner_team": "West",
             "previous_owner_id": rep_a["staff_id"], "reason": "rebalanced", "changed_by": rid()}
    event = publish_event("customer", "customer.owner_changed", moved)
    publish_event("customer", "customer.owner_changed", moved, event_id=event["event_id"])
    publish_event("customer", "customer.updated", {"customer_id": a["customer_id"], "region": "North China"})
    wait_for(lambda: inv.count("SELECT count(*) FROM inbox") == 2)
    assert_read_model_equals_the_documents(inv, rep_a, rep_b)
    assert inv.count("SELECT count(*) FROM shipped_daily WHERE customer_id = %s", a["customer_id"]) == 1
    assert inv.count("SELECT count(*) FROM failed_messages") == 0
