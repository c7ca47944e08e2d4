-- The orders waiting on credit hold, for the sales_credit_holds_waiting gauge and the finance
-- queue: a small partial index instead of a scan of every order.
CREATE INDEX orders_credit_hold ON orders (credit_held_at) WHERE status = 'credit_hold';
