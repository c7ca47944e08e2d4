-- Issue 11: the open invoices as of now (the aging, the billing report's receivable, the credit
-- figures) are read off this index alone — the running totals and the snapshot it needs are in it
-- (an index-only scan instead of the invoices' rows). It replaces invoices_open_now (0003: same key
-- and predicate, no payload).
CREATE INDEX invoices_open_now_covering ON invoices (customer_id, due_date, id)
    INCLUDE (total, reversed_amount, allocated_amount, owner_id, owner_team, region, issued_at, number)
    WHERE status = 'issued' AND NOT red AND allocated_amount + reversed_amount < total;
DROP INDEX invoices_open_now;

-- As of a past date the red invoices issued since are read (Ledger.open_items_sql): few, found
-- without reading every invoice issued since.
CREATE INDEX invoices_red_issued_at ON invoices (issued_at) WHERE red;
