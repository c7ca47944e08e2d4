"""A document as the RPC answers it: its row with lines, approval trail and saga, dumped through
the output schemas (Decimal as strings, UTC ISO datetimes). Read inside the caller's unit of work."""
from order import domain, schemas
from order.db import Contracts, Loans, Orders, Quotes, Returns, Sagas, Steps


def _trail(uow, document_type, row):
    steps = Steps(uow).trail(document_type, row["id"])
    current = [s for s in steps if s["round"] == row.get("round")]
    return steps, current


def quote(uow, row):
    steps, current = _trail(uow, "quote", row)
    return schemas.quote_out.dump(dict(row, lines=Quotes(uow).lines(row["id"]), approvals=steps,
                                       required_approvals=current))


def contract(uow, row):
    steps, current = _trail(uow, "contract", row)
    return schemas.contract_out.dump(dict(row, approvals=steps, required_approvals=current,
                                          valid=row["status"] in ("signed", "effective", "completed")))


def order(uow, row, sagas=None):
    """`sagas`: every saga of the order (SELECT *), when the caller has read them already: the
    latest is taken from them as Sagas.latest orders them, instead of asking again."""
    if sagas is None:
        saga = Sagas(uow).latest(row["id"])
    else:
        saga = max(sagas, key=lambda s: (s["started_at"], s["attempt"]), default=None)
    return schemas.order_out.dump(dict(row, lines=Orders(uow).lines(row["id"]), saga=saga))


def return_(uow, row):
    steps, _ = _trail(uow, "return", row)
    return schemas.return_out.dump(dict(row, lines=Returns(uow).lines(row["id"]), approvals=steps))


def loan(uow, row, today=None):
    steps, _ = _trail(uow, "loan", row)
    lines = [dict(l, out=domain.out_on_loan(l)) for l in Loans(uow).lines(row["id"])]
    today = today or domain.business_date(domain.utcnow())
    orders = [r["id"] for r in uow.all("SELECT id FROM orders WHERE loan_id = %s AND status <> 'cancelled'"
                                       " ORDER BY created_at", (row["id"],))]
    overdue = row["status"] == "lent" and row["due_date"] < today and any(l["out"] > 0 for l in lines)
    return schemas.loan_out.dump(dict(row, lines=lines, approvals=steps, overdue=overdue,
                                      orders=[str(o) for o in orders]))


def target(row, children_total=None):
    return schemas.target_out.dump(dict(row, children_total=children_total))


def quota(row):
    return schemas.quota_out.dump(dict(row, available=row["quantity"] - row["consumed"]))


def page(uow, rows, limit, render):
    from shared import pagination

    items, next_cursor = pagination.page(rows, limit, key=lambda r: (r["created_at"].isoformat(), r["id"]))
    return {"items": [render(uow, row) for row in items], "next_cursor": next_cursor}


LOADERS = {"quote": (Quotes, quote), "contract": (Contracts, contract), "order": (Orders, order),
           "return": (Returns, return_), "loan": (Loans, loan)}
