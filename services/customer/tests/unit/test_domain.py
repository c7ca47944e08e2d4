"""The CRM's rules without any I/O (the working-day calendar is the kit's, passed in)."""
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from customer import domain
from customer.db import Visibility
from customer.exceptions import (
    ClassificationForbidden, FieldInvalid, InvalidState, NoApprover, OwnerNotEligible, ReassignmentForbidden,
    ReviewApprovalForbidden, ReviewExpired, StaffChangeForbidden, VisitApprovalForbidden, VisitNotApproved,
    VisitRepOnly,
)
from shared import access, workdays
from shared.errors import BusinessRuleViolation, Forbidden

UTC = timezone.utc
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai


def sid():
    return str(uuid.uuid4())


def actor(role, team=None):
    return {"staff_id": sid(), "role": role, "team": team}


def person(role="sales_rep", team="East-1", region="East", active=True, name=None, manager_id=None):
    return {"id": sid(), "username": name or role, "display_name": (name or role).title(), "role": role,
            "team": team, "region": region, "active": active, "manager_id": manager_id}


# -- the archive (FR-06, FR-07, FR-10) -----------------------------------------------------------------
@pytest.mark.parametrize("a,b", [
    ("ACME Co., Ltd.", "acme"),
    ("ＡＣＭＥ有限公司", "Acme"),
    ("上海 华东 贸易有限公司", "上海华东贸易"),
    ("Acme Corporation", "ACME corp."),
    ("Beta  Inc", "beta"),
])
def test_fr07_same_company_written_differently_has_one_key(a, b):
    assert domain.name_key(a) == domain.name_key(b)


@pytest.mark.parametrize("a,b", [("Taco", "Ta"), ("Acme East", "Acme West"), ("华东贸易", "华南贸易")])
def test_fr07_different_companies_keep_different_keys(a, b):
    assert domain.name_key(a) != domain.name_key(b)


def test_legal_form_alone_is_kept_as_the_name():
    assert domain.name_key("Company") == "company"


def test_tax_key_ignores_spacing_and_case():
    assert domain.tax_key("91310000-1234 5678xk") == "9131000012345678XK"
    assert domain.tax_key("") is None and domain.tax_key(None) is None


def test_fr06_the_collector_owns_and_others_feed_the_pool():
    rep = actor("sales_rep")
    assert domain.initial_owner(rep) == rep["staff_id"]
    assert domain.initial_owner(actor("marketing_director")) is None  # FR-09: campaign leads go to the pool


def test_fr10_contact_is_due_within_one_week_and_counts_only_after_the_assignment():
    assert domain.contact_due_by(NOW) == NOW + timedelta(days=7)
    assert domain.counts_as_contact(NOW, NOW + timedelta(hours=1))
    assert not domain.counts_as_contact(NOW, NOW - timedelta(hours=1))  # a contact by the previous owner


def test_fr04_a_record_entered_after_two_working_days_of_collection_is_flagged_late():
    deadline = workdays.deadline_after_working_days
    collected = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # Wed before the National Day week
    assert domain.entry_is_late(None, NOW, deadline) is False
    assert domain.entry_is_late(collected, datetime(2026, 10, 9, 12, 0, tzinfo=UTC), deadline) is False  # Fri 8 pm
    assert domain.entry_is_late(collected, datetime(2026, 10, 9, 16, 30, tzinfo=UTC), deadline) is True  # Sat 0:30
    for bad in (NOW + timedelta(hours=1), NOW - timedelta(days=400)):
        with pytest.raises(FieldInvalid) as info:
            domain.entry_is_late(bad, NOW, deadline)
        assert "collected_at" in info.value.errors


def test_fr03_ten_new_records_per_rep_per_working_day():
    assert domain.collection_standard(5, 2) == 100 and domain.collection_standard(0, 3) == 0


# -- row-level access ----------------------------------------------------------------------------------
def test_row_level_rep_own_manager_team_and_pool_director_all():
    rep, manager, director = actor("sales_rep"), actor("sales_manager", "East-1"), actor("sales_director")
    rep_sql = Visibility(access.scope(rep), domain.sees_pool(rep)).sql("c.owner_id", "c.owner_team")
    assert rep_sql == ("c.owner_id = %s", [rep["staff_id"]])  # a rep never sees the pool
    manager_sql = Visibility(access.scope(manager), domain.sees_pool(manager)).sql("c.owner_id", "c.owner_team")
    assert manager_sql == ("((c.owner_id = %s OR c.owner_team = %s) OR c.owner_id IS NULL)",
                           [manager["staff_id"], "East-1"])
    assert Visibility(access.scope(director), True).sql("c.owner_id", "c.owner_team") == ("TRUE", [])


# -- the org chart (FR-119, FR-48) ---------------------------------------------------------------------
def test_fr119_authorities_default_by_role_and_a_person_may_have_their_own():
    assert domain.authorities("sales_rep") == (Decimal("0.05"), Decimal("0.85"))
    assert domain.authorities("sales_manager") == (Decimal("0.10"), Decimal("0.80"))
    assert domain.authorities("sales_director") == (Decimal("0.15"), Decimal("0.70"))
    assert domain.authorities("sales_rep", Decimal("0.0700"), None) == (Decimal("0.07"), Decimal("0.85"))
    assert str(domain.authorities("sales_rep", Decimal("0.0750"), Decimal("0.9000"))[0]) == "0.075"
    assert domain.authorities("warehouse") == (Decimal("0.00"), Decimal("1.00"))  # no authority at all


def test_fr119_only_admin_or_general_manager_change_the_org_chart():
    domain.check_org_change(actor("admin"))
    domain.check_org_change(actor("general_manager"))
    with pytest.raises(StaffChangeForbidden):
        domain.check_org_change(actor("sales_manager"))


def test_fr119_direct_manager_is_the_nearest_active_one_up_the_chain():
    rep = person()
    gone, boss = person("sales_manager", active=False), person("sales_director")
    assert domain.pick_approver("direct_manager", rep, [gone, boss], []) is boss
    with pytest.raises(NoApprover) as info:
        domain.pick_approver("direct_manager", rep, [], [])
    assert info.value.code == "NO_APPROVER"


def test_fr119_division_head_up_the_chain_else_a_director_of_the_region():
    rep = person(region="East")
    manager, head = person("sales_manager"), person("sales_director", region="North")
    assert domain.pick_approver("division_head", rep, [manager, head], []) is head
    west, east = person("sales_director", region="West"), person("sales_director", region="East")
    assert domain.pick_approver("division_head", rep, [manager], [west, east]) is east
    assert domain.pick_approver("division_head", person(region="South"), [], [west, east]) is west
    with pytest.raises(NoApprover):
        domain.pick_approver("division_head", rep, [manager], [])


def test_fr119_role_relations_prefer_the_region_and_never_the_person_themselves():
    pm_north, pm_east = person("product_manager", region="North"), person("product_manager", region="East")
    assert domain.pick_approver("product_manager", person(region="East"), [], [pm_north, pm_east]) is pm_east
    with pytest.raises(NoApprover):
        domain.pick_approver("product_manager", pm_north, [], [pm_north])
    with pytest.raises(FieldInvalid) as info:
        domain.pick_approver("best_friend", person(), [], [])
    assert "relation" in info.value.errors


# -- ownership (FR-08–FR-11) ---------------------------------------------------------------------------
def customer(owner_id=None, reclaimable=False):
    return {"owner_id": owner_id, "reclaimable_since": NOW if reclaimable else None}


def test_fr08_a_rep_may_not_reassign_a_customer():
    with pytest.raises(ReassignmentForbidden) as info:
        domain.assignment_kind(actor("sales_rep"), customer(sid()), person())
    assert info.value.status == 403


def test_fr08_fr09_fr10_the_kind_of_owner_change():
    manager = actor("sales_manager", "East-1")
    target = person(team="East-1")
    assert domain.assignment_kind(manager, customer(None), target) == "assign"
    assert domain.assignment_kind(manager, customer(sid(), reclaimable=True), target) == "reassign"
    assert domain.assignment_kind(manager, customer(sid()), target) == "override"
    with pytest.raises(InvalidState):
        domain.assignment_kind(manager, customer(target["id"]), target)


@pytest.mark.parametrize("target", [
    None,
    person(active=False),
    person(role="warehouse"),
    person(team="West-2"),  # another manager's team
])
def test_fr08_the_new_owner_must_be_an_active_salesperson_of_the_managers_team(target):
    with pytest.raises(OwnerNotEligible) as info:
        domain.assignment_kind(actor("sales_manager", "East-1"), customer(None), target)
    assert "owner_id" in info.value.errors


def test_fr08_a_director_assigns_across_teams():
    assert domain.assignment_kind(actor("sales_director"), customer(None), person(team="West-2")) == "assign"


def test_fr09_balanced_plan_weighs_customers_by_capacity_and_skips_the_current_owner():
    strong = {"staff_id": "a", "display_name": "A", "customers": 10, "capacity": Decimal("2")}
    weak = {"staff_id": "b", "display_name": "B", "customers": 4, "capacity": Decimal("0.5")}
    new = {"staff_id": "c", "display_name": "C", "customers": 0, "capacity": Decimal("1")}
    leads = [{"id": i, "name": f"lead {i}"} for i in range(4)] + [{"id": 9, "name": "old", "owner_id": "c"}]
    plan, people = domain.balanced_plan([strong, weak, new], leads)
    # loads: a 5.0, b 8.0, c 0 → c, c, c, c (c at 4/1 = 4 < 5), then "old" was c's: a (5.0 < 8.0)
    assert [p["owner_id"] for p in plan] == ["c", "c", "c", "c", "a"]
    assert {p["staff_id"]: p["load"] for p in people} == {"a": Decimal("5.50"), "b": Decimal("8.00"),
                                                          "c": Decimal("4.00")}
    assert domain.balanced_plan([], leads) == ([], [])


@given(st.integers(1, 8), st.integers(0, 60))
def test_fr09_balanced_plan_with_equal_capacity_leaves_counts_within_one(reps, leads):
    people = [{"staff_id": str(i), "display_name": f"R{i}", "customers": 0, "capacity": 1} for i in range(reps)]
    plan, _ = domain.balanced_plan(people, [{"id": n, "name": str(n)} for n in range(leads)])
    counts = [sum(1 for p in plan if p["owner_id"] == str(i)) for i in range(reps)]
    assert sum(counts) == leads and max(counts) - min(counts) <= 1


# -- classification (FR-13) ----------------------------------------------------------------------------
def test_fr13_a_rep_moves_the_class_and_the_same_class_changes_nothing():
    assert domain.classification_change(actor("sales_rep"), "potential", "key") == ("potential", "key")
    assert domain.classification_change(actor("sales_rep"), "key", "key") is None


def test_fr13_signed_comes_from_an_order_a_rep_may_not_set_or_undo_it():
    with pytest.raises(ClassificationForbidden):
        domain.classification_change(actor("sales_rep"), "loi_signed", "signed")
    with pytest.raises(ClassificationForbidden):
        domain.classification_change(actor("sales_rep"), "signed", "key")
    assert domain.classification_change(actor("sales_manager"), "signed", "key") == ("signed", "key")


# -- customer review (FR-14) ---------------------------------------------------------------------------
TODAY = date(2026, 11, 24)


def review(state="submitted", valid_until=TODAY + timedelta(days=90), submitted_by=None):
    return {"state": state, "valid_until": valid_until, "submitted_by": submitted_by or sid()}


def test_fr14_a_review_is_valid_from_today_for_at_most_two_years():
    domain.check_review_validity(TODAY, TODAY)
    for bad in (TODAY - timedelta(days=1), TODAY + timedelta(days=800)):
        with pytest.raises(FieldInvalid) as info:
            domain.check_review_validity(bad, TODAY)
        assert "valid_until" in info.value.errors


def test_fr14_only_a_product_manager_decides_a_waiting_review_not_their_own():
    pm = actor("product_manager")
    domain.check_review_decision(pm, review(), TODAY, approve=True)
    with pytest.raises(ReviewApprovalForbidden):
        domain.check_review_decision(actor("sales_manager"), review(), TODAY, approve=True)
    with pytest.raises(ReviewApprovalForbidden):
        domain.check_review_decision(pm, review(submitted_by=pm["staff_id"]), TODAY, approve=True)
    with pytest.raises(InvalidState):
        domain.check_review_decision(pm, review(state="approved"), TODAY, approve=True)
    with pytest.raises(ReviewExpired):
        domain.check_review_decision(pm, review(valid_until=TODAY - timedelta(days=1)), TODAY, approve=True)
    domain.check_review_decision(pm, review(valid_until=TODAY - timedelta(days=1)), TODAY, approve=False)


def test_fr14_quotable_only_with_an_approved_review_valid_today():
    assert domain.quotable([], TODAY) == (False, "the customer has no approved review", None)
    expired = {"valid_until": TODAY - timedelta(days=1)}
    ok, reason, found = domain.quotable([expired], TODAY)
    assert not ok and "expired on 2026-11-23" in reason and found is expired
    valid = {"valid_until": TODAY}
    assert domain.quotable([expired, valid], TODAY) == (True, None, valid)


# -- visits (FR-23–FR-27, FR-29) -----------------------------------------------------------------------
@pytest.mark.parametrize("state", ["planned", "rejected", "cancelled"])
def test_fr23_a_visit_log_needs_an_approved_plan(state):
    with pytest.raises(VisitNotApproved) as info:
        domain.visit_move(state, "log")
    assert info.value.code == "VISIT_NOT_APPROVED"


def test_fr23_visit_state_machine():
    assert domain.visit_move("planned", "approve") == "approved"
    assert domain.visit_move("planned", "reject") == "rejected"
    assert domain.visit_move("approved", "check_out") == "in_field"
    assert domain.visit_move("in_field", "check_in") == "returned"
    for state in ("approved", "in_field", "returned"):
        assert domain.visit_move(state, "log") == "logged"
    for state, action in (("approved", "approve"), ("logged", "log"), ("planned", "check_out"),
                          ("returned", "report_delay"), ("logged", "cancel")):
        with pytest.raises(InvalidState):
            domain.visit_move(state, action)


def test_fr23_fr29_a_plan_is_for_the_future_and_a_revisit_reports_the_tracking_first():
    later = NOW + timedelta(days=1)
    assert domain.check_plan(later, None, NOW, False, None) == later + timedelta(hours=4)
    assert domain.check_plan(later, later + timedelta(hours=1), NOW, True, "met their CTO twice") == \
        later + timedelta(hours=1)
    for args, field in (((NOW - timedelta(days=1), None, NOW, False, None), "planned_at"),
                        ((later, later, NOW, False, None), "planned_return_at"),
                        ((later, None, NOW, True, "  "), "tracking_report")):
        with pytest.raises(FieldInvalid) as info:
            domain.check_plan(*args)
        assert field in info.value.errors


def test_fr23_the_reps_manager_or_a_director_approves_never_the_rep():
    rep = person()
    visit = {"rep_id": rep["id"]}
    manager, other_manager = actor("sales_manager"), actor("sales_manager")
    domain.check_visit_approver(manager, visit, [manager["staff_id"]])
    domain.check_visit_approver(actor("sales_director"), visit, [])
    with pytest.raises(VisitApprovalForbidden):
        domain.check_visit_approver(other_manager, visit, [manager["staff_id"]])
    with pytest.raises(VisitApprovalForbidden):
        domain.check_visit_approver({"staff_id": rep["id"], "role": "sales_rep"}, visit, [])
    with pytest.raises(VisitRepOnly):
        domain.check_visit_actor(manager, visit)


def test_fr27_log_due_two_working_days_after_on_the_chinese_calendar():
    # Wednesday 30 Sep 2026, before the National Day week: 1-7 Oct are holidays, so the two working
    # days are Thu 8 and Fri 9 Oct; a plain Monday-to-Friday count would say Fri 2 Oct.
    visited = datetime(2026, 9, 30, 3, 0, tzinfo=UTC)
    due = domain.log_due_by(visited, workdays.deadline_after_working_days)
    assert due.astimezone(domain.TZ).date() == date(2026, 10, 9)
    assert due == datetime(2026, 10, 9, 15, 59, 59, 999999, tzinfo=UTC)  # local midnight
    # Friday 9 Oct: Saturday 10 Oct is a make-up working day (调休), so Mon 12 Oct is the second
    friday = datetime(2026, 10, 9, 3, 0, tzinfo=UTC)
    assert domain.log_due_by(friday, workdays.deadline_after_working_days).astimezone(domain.TZ).date() == \
        date(2026, 10, 12)


def test_fr27_a_log_is_for_a_visit_after_the_approval_and_not_in_the_future():
    visit = {"approved_at": NOW - timedelta(days=1)}
    domain.check_log(visit, NOW - timedelta(hours=1), NOW)
    for visited in (NOW + timedelta(hours=1), NOW - timedelta(days=2)):
        with pytest.raises(FieldInvalid) as info:
            domain.check_log(visit, visited, NOW)
        assert "visited_at" in info.value.errors


def test_fr24_a_delay_notice_names_a_later_return():
    domain.check_delay(NOW + timedelta(hours=1), NOW)
    with pytest.raises(FieldInvalid):
        domain.check_delay(NOW, NOW)


def test_fr26_weeks_and_the_standard_of_ten():
    assert domain.iso_week(datetime(2026, 11, 29, 17, 0, tzinfo=UTC)) == "2026-W49"  # Monday in Shanghai
    assert domain.week_dates("2026-W48") == (date(2026, 11, 23), date(2026, 11, 30))
    for bad in ("2026-48", "2026-W54"):
        with pytest.raises(FieldInvalid):
            domain.week_dates(bad)
    assert domain.visit_standard(date(2026, 11, 1), date(2026, 11, 14), 3) == Decimal("60.00")
    assert domain.share(15, Decimal("60")) == Decimal("25.00") and domain.share(1, 0) is None


# -- opportunities (FR-37–FR-39) -----------------------------------------------------------------------
def opportunity(stage="identified", priority="high"):
    return {"stage": stage, "priority": priority}


def test_fr38_stages_move_one_forward_or_back_and_qualifying_needs_a_priority():
    assert domain.check_stage_move(opportunity(), "qualified") is True
    assert domain.check_stage_move(opportunity("negotiation"), "qualified") is True
    assert domain.check_stage_move(opportunity("proposal"), "proposal") is False
    with pytest.raises(InvalidState):
        domain.check_stage_move(opportunity(), "proposal")
    with pytest.raises(FieldInvalid) as info:
        domain.check_stage_move(opportunity(priority=None), "qualified")
    assert "priority" in info.value.errors
    with pytest.raises(FieldInvalid):
        domain.check_stage_move(opportunity("proposal"), "won")
    with pytest.raises(InvalidState):
        domain.check_stage_move(opportunity("lost"), "identified")


def test_fr39_a_lost_opportunity_needs_a_reason():
    assert domain.check_close(opportunity("qualified"), "lost", "price too high", None) == 0
    for reason in (None, "", "   "):
        with pytest.raises(FieldInvalid) as info:
            domain.check_close(opportunity("qualified"), "lost", reason, None)
        assert "reason" in info.value.errors


def test_fr39_a_won_opportunity_links_the_order_and_comes_from_proposal_or_negotiation():
    assert domain.check_close(opportunity("negotiation"), "won", None, uuid.uuid4()) == 100
    with pytest.raises(FieldInvalid) as info:
        domain.check_close(opportunity("negotiation"), "won", None, None)
    assert "order_id" in info.value.errors
    with pytest.raises(InvalidState):
        domain.check_close(opportunity("identified"), "won", None, uuid.uuid4())
    with pytest.raises(InvalidState):
        domain.check_close(opportunity("won"), "lost", "changed our mind", None)


def test_pipeline_weighting_rounds_half_up_to_cents():
    assert domain.weighted(Decimal("1000.05"), 35) == Decimal("350.02")
    assert domain.weighted(Decimal("0.05"), 50) == Decimal("0.03")


# -- proposals (FR-40, FR-41) ------------------------------------------------------------------------
PROPOSAL_PATH = [("submit", "internal_review"), ("approve", "approved"), ("send", "submitted"),
                 ("decline", "rejected"), ("revise", "draft")]


def test_fr40_the_proposal_loop_and_only_it():
    state = "draft"
    for action, expected in PROPOSAL_PATH:
        state = domain.proposal_move(state, action)
        assert state == expected
    allowed = {(s, a) for a, moves in domain._PROPOSAL_MOVES.items() for s in moves}
    for state in domain.PROPOSAL_STATES:
        for action in domain._PROPOSAL_MOVES:
            if (state, action) not in allowed:
                with pytest.raises(InvalidState):
                    domain.proposal_move(state, action)
    assert not any(state == "accepted" for state, _ in allowed)  # accepted is final


def test_fr40_a_new_round_only_after_the_customer_said_no():
    assert domain.next_revision({"state": "rejected", "revision": 2}, "revise") == 3
    assert domain.next_revision({"state": "draft", "revision": 2}, "revise") == 2
    assert domain.next_revision({"state": "internal_review", "revision": 2}, "reject") == 2


def test_fr41_a_tender_has_a_future_closing_time_and_a_proposal_none():
    domain.check_tender_window("tender", NOW + timedelta(days=1), NOW)
    domain.check_tender_window("proposal", None, NOW)
    for kind, closes_at in (("tender", None), ("tender", NOW), ("proposal", NOW + timedelta(days=1))):
        with pytest.raises(FieldInvalid) as info:
            domain.check_tender_window(kind, closes_at, NOW)
        assert "closes_at" in info.value.errors
    tender = {"kind": "tender", "closes_at": NOW}
    domain.check_tender_open(tender, NOW - timedelta(seconds=1))
    with pytest.raises(BusinessRuleViolation):
        domain.check_tender_open(tender, NOW)


def test_fr40_the_review_is_the_owners_line_never_the_author():
    rep, manager, stranger = sid(), sid(), sid()
    proposal = {"owner_id": rep}
    domain.check_proposal_reviewer({"staff_id": manager, "role": "sales_manager"}, proposal, [manager])
    domain.check_proposal_reviewer({"staff_id": stranger, "role": "sales_director"}, proposal, [manager])
    for actor in ({"staff_id": rep, "role": "sales_director"}, {"staff_id": stranger, "role": "sales_manager"},
                  {"staff_id": stranger, "role": "sales_rep"}):
        with pytest.raises(Forbidden):
            domain.check_proposal_reviewer(actor, proposal, [manager])


def test_fr18_a_sheet_is_due_a_calendar_month_after_its_review():
    shanghai = lambda *a: datetime(*a, tzinfo=domain.TZ)  # noqa: E731
    assert domain.logistics_review_due(shanghai(2026, 11, 25, 9)) == shanghai(2026, 12, 25, 9)
    assert domain.logistics_review_due(shanghai(2026, 12, 31, 9)) == shanghai(2027, 1, 31, 9)
    assert domain.logistics_review_due(shanghai(2027, 1, 31, 9)) == shanghai(2027, 2, 28, 9)
    assert domain.add_months(shanghai(2028, 3, 31, 9), -1) == shanghai(2028, 2, 29, 9)
