-- Issue 11 (FR-62): the OSB cycle report reads the sale orders confirmed in the period — at 1M order
-- lines a year is 225,000 orders — off this index alone (an index-only scan: the times and the
-- snapshot it needs are in it) instead of the orders' wide rows.
CREATE INDEX orders_osb_cycle ON orders (confirmed_at)
    INCLUDE (owner_id, owner_team, region, customer_id, created_at, shipped_at, invoiced_at, paid_at)
    WHERE kind = 'sale' AND confirmed_at IS NOT NULL;
