-- Issue 11: the receivables aging as of a past date, and the periods of the billing report.
--
-- An invoice settled now has been settled since its settled_at (set and cleared by the same
-- transaction as the allocation, reversal or red invoice that settles or reopens it), so only the
-- invoices open now and those settled at or after the date can have been open then
-- (Ledger.open_items_sql): this index finds the latter without reading the settled history.
CREATE INDEX invoices_settled_at ON invoices (settled_at)
    WHERE status = 'issued' AND NOT red AND settled_at IS NOT NULL;

-- What was invoiced in a period (the billing report, the aging's DSO) and collected in it.
CREATE INDEX invoices_issued_at ON invoices (issued_at) INCLUDE (red, total, owner_id, owner_team)
    WHERE status = 'issued';
CREATE INDEX allocations_allocated_at ON allocations (allocated_at);
CREATE INDEX allocations_reversed_at ON allocations (reversed_at) WHERE reversed_at IS NOT NULL;
