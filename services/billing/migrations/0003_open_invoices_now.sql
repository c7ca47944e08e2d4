-- Issue 11: the receivables aging, the billing report's receivable and the credit figures read the
-- invoices open now; at 1M order lines most issued invoices are settled, so they are found through
-- this index of the unsettled ones (the running totals kept by the guarded UPDATE) instead of all.
CREATE INDEX invoices_open_now ON invoices (customer_id, due_date, id)
    WHERE status = 'issued' AND NOT red AND allocated_amount + reversed_amount < total;
