"""Row-level access (API.md "Row-level access"): which owners' records an actor may see.

A sales rep sees only what they own; a sales manager what they or their team own; every other
role sees what its work needs, which is all rows (the gateway's role checks decide which
endpoints a role may call at all). Someone else's record answers 404, never 403.

Services apply the scope inside their own queries (`Scope.sql`), on the owner columns they keep
on their documents (the customer's owner and that owner's team, copied when the document is made
and moved by `customer.owner_changed`). Pure: no framework, no I/O.
"""
import uuid
from dataclasses import dataclass
from typing import Optional

ROLES = (  # API.md "Roles"
    "admin", "general_manager", "sales_director", "marketing_director", "sales_manager", "sales_rep",
    "order_desk", "product_manager", "warehouse", "finance", "service_engineer", "integration",
)
# Who a service acts as when it acts on its own (a saga step, a periodic job, an event handler).
SYSTEM_ACTOR = {
    "staff_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "sales-platform:staff:system")),
    "role": "admin",
    "username": "system",
    "team": None,
}
OWN_ONLY = frozenset({"sales_rep"})
OWN_AND_TEAM = frozenset({"sales_manager"})


@dataclass(frozen=True)
class Scope:
    """`owner_id` and `team` None: every row. Else rows owned by `owner_id` or by `team`."""

    owner_id: Optional[str] = None
    team: Optional[str] = None

    @property
    def unrestricted(self):
        return self.owner_id is None and self.team is None

    def allows(self, owner_id, owner_team=None):
        if self.unrestricted:
            return True
        if owner_id is not None and str(owner_id) == self.owner_id:
            return True
        return self.team is not None and owner_team is not None and owner_team == self.team

    def sql(self, owner_column, team_column=None):
        """(`SQL condition`, params) to AND into a WHERE clause; ("TRUE", []) when unrestricted."""
        if self.unrestricted:
            return "TRUE", []
        if self.team is not None and team_column is not None:
            return f"({owner_column} = %s OR {team_column} = %s)", [self.owner_id, self.team]
        return f"{owner_column} = %s", [self.owner_id]


def scope(actor):
    """The Scope of an actor (`{"staff_id", "role", "team"?}`, as every RPC receives it)."""
    role = actor.get("role")
    staff_id = str(actor["staff_id"])
    if role in OWN_ONLY:
        return Scope(owner_id=staff_id)
    if role in OWN_AND_TEAM:
        return Scope(owner_id=staff_id, team=actor.get("team") or None)
    return Scope()
