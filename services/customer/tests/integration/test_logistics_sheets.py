"""FR-18: the customer's shipping / logistics sheet, kept by the sales secretary group (order desk)
and reviewed monthly; through the service's RPC on a real database."""
from datetime import timedelta

import pytest

from shared.errors import NotFound, ValidationFailed

SHEET = {"consignee": "Zhang Min, receiving dock 3", "address": "88 Gongye Rd, Suzhou", "phone": "0512-5555-0101",
         "carrier": "SF Freight", "delivery_notes": "forklift on site; 08:00-16:00 only"}


def test_fr18_the_sheet_is_kept_reviewed_monthly_and_listed_when_due(crm):
    rep = crm.staff()
    desk = crm.staff("order_desk")
    kept, missing = crm.customer(rep), crm.customer(rep)
    empty = crm.rpc.get_logistics(actor=rep, customer_id=kept["id"])
    assert (empty["consignee"], empty["due"]) == (None, True)  # no sheet yet: due
    sheet = crm.rpc.save_logistics(request_id=crm.rid(), actor=desk, customer_id=kept["id"], sheet=SHEET)
    assert (sheet["carrier"], sheet["reviewed_by"], sheet["due"]) == ("SF Freight", desk["staff_id"], False)
    assert sheet["review_due_by"] > sheet["reviewed_at"]
    due = crm.rpc.list_logistics_due(actor=desk)["items"]
    assert {c["customer_id"] for c in due} >= {missing["id"]} and kept["id"] not in {c["customer_id"] for c in due}
    later = (crm.now() + timedelta(days=32)).isoformat()
    due_later = crm.rpc.list_logistics_due(actor=desk, as_of=later)["items"]
    assert kept["id"] in {c["customer_id"] for c in due_later}  # a month on, it is due again
    assert [c for c in due_later if c["customer_id"] == kept["id"]][0]["due"]
    again = crm.rpc.save_logistics(request_id=crm.rid(), actor=rep, customer_id=kept["id"],
                                   sheet=dict(SHEET, carrier="Deppon"))
    assert (again["carrier"], again["reviewed_by"]) == ("Deppon", rep["staff_id"])


def test_fr18_bad_sheets_are_refused_and_change_nothing(crm):
    rep, other = crm.staff(), crm.staff()
    customer = crm.customer(rep)
    for over, field in (({"consignee": ""}, "consignee"), ({"address": None}, "address"), ({"fax": "1"}, "fax")):
        with pytest.raises(ValidationFailed) as info:
            crm.rpc.save_logistics(request_id=crm.rid(), actor=rep, customer_id=customer["id"],
                                   sheet=dict(SHEET, **over))
        assert field in info.value.errors
    with pytest.raises(NotFound):  # another rep's customer
        crm.rpc.save_logistics(request_id=crm.rid(), actor=other, customer_id=customer["id"], sheet=SHEET)
    assert crm.scalar("SELECT count(*) FROM logistics_sheets") == 0
