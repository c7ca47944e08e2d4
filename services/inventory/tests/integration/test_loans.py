"""Loans (借出, FR-98–FR-100): goods out without a sale, back in only as counted and never more
than is out, or converted to a sale without moving again; per line lent = returned + converted +
still out — against the real PostgreSQL and RabbitMQ."""
import uuid

import pytest

from shared.errors import BusinessRuleViolation, Conflict
from shared.testing.contracts import assert_matches_contract


def rid():
    return str(uuid.uuid4())


@pytest.fixture
def loan(inv, who):
    """A loan of 5 motors and 2 cables out to a customer of a rep of team East."""
    motor, cable = inv.stocked(10), inv.stocked(10)
    rep = who.new("sales_rep", "East")
    loan_id = rid()
    issued = inv.rpc.issue_loan(request_id=rid(), loan_id=loan_id, loan_number="LN-2026-000001", customer_id=rid(),
                                owner_id=rep["staff_id"], owner_team="East", region="East China",
                                lines=[{"sku": motor, "quantity": 5}, {"sku": cable, "quantity": 2}])
    return {"id": loan_id, "motor": motor, "cable": cable, "rep": rep, "issued": issued}


def balanced(loan):
    return all(line["lent"] == line["returned"] + line["converted"] + line["still_out"] and line["still_out"] >= 0
               for line in loan["lines"])


def test_fr98_a_loan_takes_goods_from_on_hand_to_on_loan(inv, loan):
    issued = loan["issued"]
    assert issued["status"] == "out" and issued["loan_number"] == "LN-2026-000001"
    assert {l["sku"]: (l["lent"], l["still_out"]) for l in issued["lines"]} == {loan["motor"]: (5, 5),
                                                                                 loan["cable"]: (2, 2)}
    level = inv.level(loan["motor"])
    assert (level["on_hand"], level["available"], level["on_loan"]) == (5, 5, 5)
    with pytest.raises(Conflict) as info:
        inv.rpc.issue_loan(request_id=rid(), loan_id=loan["id"], customer_id=rid(),
                           lines=[{"sku": loan["motor"], "quantity": 1}])
    assert info.value.code == "LOAN_EXISTS"
    with pytest.raises(BusinessRuleViolation) as info:
        inv.rpc.issue_loan(request_id=rid(), loan_id=rid(), customer_id=rid(),
                           lines=[{"sku": loan["motor"], "quantity": 6}])
    assert info.value.code == "INSUFFICIENT_STOCK"
    inv.books_balance()


def test_fr100_a_loan_return_must_match_the_counted_goods_and_never_exceed_what_is_out(inv, loan):
    motor, cable = loan["motor"], loan["cable"]
    for lines, code in (([{"sku": motor, "quantity": 2, "counted_quantity": 1}], "LOAN_RETURN_MISMATCH"),
                        ([{"sku": inv.stocked(0), "quantity": 1, "counted_quantity": 1}], "LOAN_RETURN_MISMATCH"),
                        ([{"sku": cable, "quantity": 3, "counted_quantity": 3}], "LOAN_OVER_RETURN")):
        with pytest.raises(BusinessRuleViolation) as info:
            inv.rpc.return_loan(request_id=rid(), loan_id=loan["id"], lines=lines)
        assert info.value.code == code
    assert inv.level(motor)["on_loan"] == 5

    back = inv.rpc.return_loan(request_id=rid(), loan_id=loan["id"],
                               lines=[{"sku": motor, "quantity": 2, "counted_quantity": 2}])
    assert back["document"]["number"].startswith("LR-")
    assert {l["sku"]: (l["returned"], l["still_out"]) for l in back["lines"]}[motor] == (2, 3)
    assert balanced(back) and back["status"] == "out"
    level = inv.level(motor)
    assert (level["on_hand"], level["on_loan"]) == (7, 3)
    inv.books_balance()


def test_fr99_conversion_raises_an_issued_note_and_goods_issued_without_moving_goods(inv, loan, who):
    motor, cable = loan["motor"], loan["cable"]
    inv.rpc.return_loan(request_id=rid(), loan_id=loan["id"],
                        lines=[{"sku": motor, "quantity": 1, "counted_quantity": 1}])
    order_id, line_id = rid(), rid()
    with pytest.raises(BusinessRuleViolation) as info:
        inv.rpc.convert_loan(request_id=rid(), loan_id=loan["id"], order_id=order_id, lines=[
            {"order_line_id": line_id, "sku": motor, "quantity": 5, "unit_price": "1100.00"}])
    assert info.value.code == "LOAN_OVER_CONVERSION" and info.value.extra["still_out"] == 4
    on_hand_before = inv.level(motor)["on_hand"]

    converted = inv.rpc.convert_loan(request_id=rid(), loan_id=loan["id"], order_id=order_id,
                                     order_number="SO-2026-000042", lines=[
                                         {"order_line_id": line_id, "sku": motor, "quantity": 4,
                                          "unit_price": "1100.00"},
                                         {"order_line_id": rid(), "sku": cable, "quantity": 2, "unit_price": "30.00",
                                          "vat_rate": "0.09"}])
    note = converted["delivery"]
    assert note["status"] == "issued" and note["loan_id"] == loan["id"] and note["order_id"] == order_id
    assert note["number"].startswith("DN-") and note["goods_issue_number"].startswith("GI-")
    assert note["owner_id"] == loan["rep"]["staff_id"] and note["total"] == "4460.00"
    assert converted["status"] == "closed" and balanced(converted)
    assert {l["sku"]: (l["lent"], l["returned"], l["converted"], l["still_out"]) for l in converted["lines"]} == {
        motor: (5, 1, 4, 0), cable: (2, 0, 2, 0)}
    level = inv.level(motor)
    assert (level["on_hand"], level["on_loan"]) == (on_hand_before, 0)  # the goods stay with the customer

    [event] = inv.events("goods.issued")
    assert_matches_contract("inventory", event)
    assert event["data"]["loan_id"] == loan["id"] and event["data"]["order_number"] == "SO-2026-000042"
    assert [(l["sku"], l["quantity"], l["unit_price"], l["vat_rate"]) for l in event["data"]["lines"]] == [
        (motor, 4, "1100.00", "0.13"), (cable, 2, "30.00", "0.09")]
    assert event["data"]["lines"][0]["order_line_id"] == line_id

    # what was sold from a loan can come back as a return
    inv.rpc.receive_return(request_id=rid(), return_id=rid(), delivery_id=note["id"],
                           lines=[{"sku": motor, "quantity": 1}])
    assert inv.level(motor)["on_hand"] == on_hand_before + 1
    assert inv.rpc.get_loan(actor=loan["rep"], loan_id=loan["id"])["status"] == "closed"
    inv.books_balance()


def test_loan_commands_are_idempotent_by_request_id(inv, loan):
    request_id = rid()
    lines = [{"sku": loan["cable"], "quantity": 1, "counted_quantity": 1}]
    first = inv.rpc.return_loan(request_id=request_id, loan_id=loan["id"], lines=lines)
    assert inv.rpc.return_loan(request_id=request_id, loan_id=loan["id"], lines=lines) == first
    assert inv.level(loan["cable"])["on_loan"] == 1
    inv.books_balance()
