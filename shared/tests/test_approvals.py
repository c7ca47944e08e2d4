"""The approval-step helper (shared.approvals): whose turn, decisions, voiding, content binding."""
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from shared import approvals
from shared.approvals import (
    APPROVED, PENDING, REJECTED, VOIDED, WAITING, ApprovalStale, NothingToApprove, NotYourTurn, Requirement,
    SelfApprovalForbidden,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MANAGER = {"id": str(uuid.uuid4()), "display_name": "Zhang Min", "role": "sales_manager"}
HEAD = {"id": str(uuid.uuid4()), "display_name": "Liu Yang", "role": "sales_director"}
REP = str(uuid.uuid4())
CONTENT = {"customer_id": str(uuid.uuid4()), "lines": [{"sku": "A", "quantity": 2, "unit_price": Decimal("90.00")}]}
HASH = approvals.content_hash(CONTENT)


def chain():
    return approvals.plan([Requirement("direct_manager", "sales_manager", "below list price"),
                           Requirement("division_head", "sales_director", "below the floor price")])


def test_plan_orders_the_steps_and_keeps_a_relation_once():
    steps = approvals.plan([Requirement("direct_manager", "sales_manager", "a"),
                            Requirement("division_head", "sales_director", "b"),
                            Requirement("direct_manager", "sales_manager", "c")])
    assert [(s.seq, s.relation, s.status) for s in steps] == [(1, "direct_manager", WAITING),
                                                            (2, "division_head", WAITING)]
    assert approvals.outcome(()) == APPROVED and approvals.valid_for((), HASH)


def test_whose_turn_the_first_step_then_the_next_once_approved():
    steps = chain()
    assert approvals.needs_approver(steps).seq == 1
    steps = approvals.assign(steps, 1, MANAGER, NOW)
    assert approvals.current(steps).approver_id == MANAGER["id"] and approvals.needs_approver(steps) is None
    steps, decided = approvals.decide(steps, actor_id=MANAGER["id"], decision="approve", comment="fine",
                                      document_hash=HASH, now=NOW, requester_id=REP)
    assert decided.status == APPROVED and decided.decided_by == MANAGER["id"] and decided.comment == "fine"
    assert approvals.outcome(steps) == "pending"
    assert approvals.needs_approver(steps).seq == 2  # the head is found when the step becomes current
    steps = approvals.assign(steps, 2, HEAD, NOW)
    steps, _ = approvals.decide(steps, actor_id=HEAD["id"], decision="approve", comment=None,
                                document_hash=HASH, now=NOW)
    assert approvals.outcome(steps) == APPROVED and approvals.current(steps) is None
    assert approvals.valid_for(steps, HASH)
    assert not approvals.valid_for(steps, approvals.content_hash(dict(CONTENT, lines=[])))


def test_refusal_someone_else_than_the_assigned_approver_is_not_your_turn():
    steps = approvals.assign(chain(), 1, MANAGER, NOW)
    with pytest.raises(NotYourTurn) as info:
        approvals.decide(steps, actor_id=HEAD["id"], decision="approve", comment=None, document_hash=HASH, now=NOW)
    assert info.value.code == "NOT_YOUR_TURN" and info.value.status == 403
    assert info.value.extra["relation"] == "direct_manager"


def test_refusal_no_one_approves_their_own_request():
    steps = approvals.assign(chain(), 1, MANAGER, NOW)
    with pytest.raises(SelfApprovalForbidden):
        approvals.decide(steps, actor_id=MANAGER["id"], decision="approve", comment=None, document_hash=HASH,
                         now=NOW, requester_id=MANAGER["id"])


def test_refusal_a_step_without_an_approver_or_a_finished_chain_has_nothing_to_decide():
    with pytest.raises(NothingToApprove):
        approvals.decide(chain(), actor_id=MANAGER["id"], decision="approve", comment=None, document_hash=HASH,
                         now=NOW)
    with pytest.raises(NothingToApprove):
        approvals.assign(chain(), 2, HEAD, NOW)  # not its turn yet


def test_a_rejection_ends_the_chain_and_voids_the_later_steps():
    steps = approvals.assign(chain(), 1, MANAGER, NOW)
    steps, decided = approvals.decide(steps, actor_id=MANAGER["id"], decision="reject", comment="too cheap",
                                      document_hash=HASH, now=NOW)
    assert decided.status == REJECTED and [s.status for s in steps] == [REJECTED, VOIDED]
    assert approvals.outcome(steps) == REJECTED and approvals.current(steps) is None
    assert not approvals.valid_for(steps, HASH)


def test_content_binding_a_decision_on_changed_content_is_stale():
    steps = approvals.assign(chain(), 1, MANAGER, NOW)
    steps, _ = approvals.decide(steps, actor_id=MANAGER["id"], decision="approve", comment=None,
                                document_hash=HASH, now=NOW)
    steps = approvals.assign(steps, 2, HEAD, NOW)
    changed = approvals.content_hash(dict(CONTENT, lines=[dict(CONTENT["lines"][0], unit_price=Decimal("80"))]))
    with pytest.raises(ApprovalStale):
        approvals.decide(steps, actor_id=HEAD["id"], decision="approve", comment=None, document_hash=changed,
                         now=NOW)


def test_void_keeps_the_trail_but_nothing_counts_any_more():
    steps = approvals.assign(chain(), 1, MANAGER, NOW)
    steps, _ = approvals.decide(steps, actor_id=MANAGER["id"], decision="approve", comment="ok",
                                document_hash=HASH, now=NOW)
    voided = approvals.void(steps)
    assert [s.status for s in voided] == [VOIDED, VOIDED]
    assert voided[0].decided_by == MANAGER["id"] and voided[0].comment == "ok"  # who, when, what: kept
    assert approvals.outcome(voided) == VOIDED and not approvals.valid_for(voided, HASH)
    assert approvals.current(voided) is None


def test_assign_records_who_the_org_chart_named():
    step = approvals.assign(chain(), 1, MANAGER, NOW)[0]
    assert (step.status, step.approver_id, step.approver_name, step.approver_role, step.assigned_at) == (
        PENDING, MANAGER["id"], "Zhang Min", "sales_manager", NOW)
    assert set(step.as_dict()) >= {"seq", "relation", "role", "reason", "status", "decided_by", "content_hash"}


def test_decision_must_be_approve_or_reject():
    steps = approvals.assign(chain(), 1, MANAGER, NOW)
    with pytest.raises(ValueError):
        approvals.decide(steps, actor_id=MANAGER["id"], decision="maybe", comment=None, document_hash=HASH, now=NOW)


@given(st.dictionaries(st.text(min_size=1, max_size=5),
                       st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**6, max_value=10**6),
                       max_size=6))
def test_content_hash_ignores_key_order_and_decimal_scale(content):
    reordered = dict(reversed(list(content.items())))
    rescaled = {k: v.quantize(Decimal("0.0001")) for k, v in content.items()}
    assert approvals.content_hash(content) == approvals.content_hash(reordered) == approvals.content_hash(rescaled)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=0, max_value=10**6),
       st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=0, max_value=10**6))
def test_content_hash_changes_with_any_value(a, b):
    same = approvals.content_hash({"p": a}) == approvals.content_hash({"p": b})
    assert same == (a == b)
