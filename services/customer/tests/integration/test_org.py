"""The org chart (FR-119): staff with role, manager, team, region, territory, capacity and price
authority; changes that keep customers' team in step; approvers found from the chart."""
import pytest

from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed


def test_fr119_staff_carry_authorities_by_role_or_their_own(crm):
    rep = crm.staff(team="East-1", region="East")
    senior = crm.staff(discount_authority="0.07", price_authority="0.82", capacity="1.50")
    got = crm.rpc.get_staff(staff_id=rep["staff_id"])
    assert (got["role"], got["team"], got["region"], got["active"]) == ("sales_rep", "East-1", "East", True)
    assert (got["discount_authority"], got["price_authority"], got["capacity"]) == ("0.05", "0.85", "1.00")
    got = crm.rpc.get_staff(staff_id=senior["staff_id"])
    assert (got["discount_authority"], got["price_authority"], got["capacity"]) == ("0.07", "0.82", "1.50")
    with pytest.raises(ValidationFailed) as info:
        crm.staff(discount_authority="1.5")
    assert "discount_authority" in info.value.errors
    with pytest.raises(NotFound):
        crm.rpc.get_staff(staff_id=crm.rid())


def test_fr119_a_team_change_moves_the_customers_scope_and_is_published(crm):
    east, (rep,) = crm.team("East-1", reps=1)
    west, _ = crm.team("West-1", reps=0)
    customers = [crm.customer(rep)["id"] for _ in range(2)]
    updated = crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=rep["staff_id"],
                                   changes={"team": "West-1", "manager_id": west["staff_id"], "capacity": "2"})
    assert (updated["team"], updated["manager_id"], updated["capacity"], updated["version"]) == \
        ("West-1", west["staff_id"], "2.00", 2)
    # the new manager sees the rep's customers now, the old one no longer
    assert {c["id"] for c in crm.rpc.list_customers(actor=west)["items"]} == set(customers)
    assert crm.rpc.list_customers(actor=east)["items"] == []
    moves = crm.outbox("customer.owner_changed")
    assert {m["data"]["customer_id"] for m in moves} == set(customers)
    assert all((m["data"]["kind"], m["data"]["owner_team"], m["data"]["previous_owner_team"]) ==
               ("team", "West-1", "East-1") for m in moves)
    [staff_updated] = crm.outbox("staff.updated")
    assert (staff_updated["data"]["team"], staff_updated["data"]["version"]) == ("West-1", 2)
    assert crm.rpc.find_approver(staff_id=rep["staff_id"], relation="direct_manager")["id"] == west["staff_id"]


def test_fr119_the_org_chart_refuses_cycles_unknown_people_and_other_roles(crm):
    manager, (rep,) = crm.team(reps=1)
    director = crm.staff("sales_director")
    crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=manager["staff_id"],
                         changes={"manager_id": director["staff_id"]})
    for changes in ({"manager_id": rep["staff_id"]}, {"manager_id": manager["staff_id"]},
                    {"manager_id": crm.rid()}, {"territory": "Atlantis"}):
        with pytest.raises(ValidationFailed) as info:  # a cycle, themselves, nobody, no territory
            crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=manager["staff_id"], changes=changes)
        assert set(info.value.errors) == set(changes)
    with pytest.raises(ValidationFailed):  # director → rep → manager → director
        crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=director["staff_id"],
                             changes={"manager_id": rep["staff_id"]})
    with pytest.raises(Forbidden) as info:
        crm.rpc.update_staff(request_id=crm.rid(), actor=manager, staff_id=rep["staff_id"], changes={"role": "admin"})
    assert info.value.code == "STAFF_CHANGE_FORBIDDEN"
    with pytest.raises(NotFound):
        crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=crm.rid(), changes={"active": False})
    assert crm.rpc.get_staff(staff_id=rep["staff_id"])["role"] == "sales_rep"
    assert len(crm.outbox("staff.updated")) == 1  # only the one change that was allowed


def test_fr119_find_approver_follows_the_chart_now(crm):
    gm = crm.staff("general_manager")
    head = crm.staff("sales_director", manager=gm, region="East")
    other_head = crm.staff("sales_director", region="North")
    manager = crm.staff("sales_manager", team="East-1", manager=head, region="East")
    rep = crm.staff(team="East-1", manager=manager, region="East")
    crm.staff("product_manager", region="North")
    pm_east = crm.staff("product_manager", region="East")
    marketing = crm.staff("marketing_director")

    def approver(staff, relation):
        return crm.rpc.find_approver(staff_id=staff["staff_id"], relation=relation)

    assert approver(rep, "direct_manager")["id"] == manager["staff_id"]
    assert approver(rep, "division_head")["id"] == head["staff_id"]
    assert approver(rep, "product_manager")["id"] == pm_east["staff_id"]
    assert approver(rep, "marketing_director")["id"] == marketing["staff_id"]
    assert approver(rep, "general_manager") == {
        "id": gm["staff_id"], "username": gm["username"], "display_name": gm["username"].title(),
        "role": "general_manager", "team": None, "region": None, "relation": "general_manager"}
    # "now": the manager leaves, the next one up approves; the head leaves, another head does
    crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=manager["staff_id"], changes={"active": False})
    assert approver(rep, "direct_manager")["id"] == head["staff_id"]
    crm.rpc.update_staff(request_id=crm.rid(), actor=crm.ADMIN, staff_id=head["staff_id"], changes={"active": False})
    assert approver(rep, "division_head")["id"] == other_head["staff_id"]
    with pytest.raises(Conflict) as info:
        approver(gm, "direct_manager")
    assert info.value.code == "NO_APPROVER"
    with pytest.raises(ValidationFailed) as info:
        approver(rep, "best_friend")
    assert "relation" in info.value.errors


def test_fr119_markets_and_areas_are_configurable_territories(crm):
    head = crm.staff("sales_director")
    east = crm.rpc.put_territory(request_id=crm.rid(), actor=crm.ADMIN, territory={
        "code": "EAST", "name": "East China", "kind": "market", "head_id": head["staff_id"]})
    crm.rpc.put_territory(request_id=crm.rid(), actor=crm.ADMIN, territory={
        "code": "SD", "name": "Shandong", "kind": "area", "parent_code": "EAST"})
    renamed = crm.rpc.put_territory(request_id=crm.rid(), actor=crm.ADMIN, territory={
        "code": "EAST", "name": "East", "kind": "market", "head_id": head["staff_id"]})
    assert renamed["version"] == east["version"] + 1
    rep = crm.staff(territory="SD")
    assert crm.rpc.get_staff(staff_id=rep["staff_id"])["territory"] == "SD"
    assert [(t["code"], t["parent_code"]) for t in crm.rpc.list_territories(actor=rep)["items"]] == \
        [("EAST", None), ("SD", "EAST")]
    for territory, field in (({"code": "X", "name": "X", "kind": "area"}, "parent_code"),
                             ({"code": "X", "name": "X", "kind": "area", "parent_code": "SD"}, "parent_code"),
                             ({"code": "X", "name": "X", "kind": "market", "head_id": crm.rid()}, "head_id"),
                             ({"code": "bad code!", "name": "X", "kind": "market"}, "code")):
        with pytest.raises(ValidationFailed) as info:
            crm.rpc.put_territory(request_id=crm.rid(), actor=crm.ADMIN, territory=territory)
        assert field in info.value.errors
    with pytest.raises(Forbidden):
        crm.rpc.put_territory(request_id=crm.rid(), actor=rep, territory={"code": "Y", "name": "Y", "kind": "market"})
    assert crm.scalar("SELECT count(*) FROM territories") == 2


def test_staff_list_filters_and_pages(crm):
    manager, reps = crm.team("East-1", reps=3)
    crm.team("West-1", reps=1)
    page = crm.rpc.list_staff(actor=manager, filters={"team": "East-1", "role": "sales_rep"}, limit=2)
    rest = crm.rpc.list_staff(actor=manager, filters={"team": "East-1", "role": "sales_rep"},
                              cursor=page["next_cursor"])
    assert [s["id"] for s in page["items"] + rest["items"]] == [r["staff_id"] for r in reps]
    assert crm.rpc.list_staff(actor=manager, filters={"manager_id": manager["staff_id"]}, limit=10)["items"][0][
        "manager_id"] == manager["staff_id"]
