-- Issue 11 (FR-90, FR-120–FR-123): the ordered / returned / shipped / invoiced figures of the sales
-- performance report, per Asia/Shanghai day of confirmation × owner × team × region × customer,
-- kept by the same transactions that write the facts (db.SalesDaily: an order confirmed or
-- cancelled, a line shipped, returned or invoiced, a customer's documents moved to a new owner or
-- region). The report by rep, team, region or customer sums these rows instead of joining every
-- order line of the period. `orders` counts the confirmed, not cancelled orders with a line.
CREATE TABLE order_sales_daily (
    day         date          NOT NULL,
    owner_id    uuid,
    owner_team  text,
    region      text,
    customer_id uuid          NOT NULL,
    orders      integer       NOT NULL DEFAULT 0,
    ordered     numeric       NOT NULL DEFAULT 0,
    returned    numeric       NOT NULL DEFAULT 0,
    shipped     numeric       NOT NULL DEFAULT 0,
    invoiced    numeric       NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX order_sales_daily_key ON order_sales_daily (day, customer_id, owner_id, owner_team, region)
    NULLS NOT DISTINCT;
CREATE INDEX order_sales_daily_customer ON order_sales_daily (customer_id);

-- the backfill: the figures of every order confirmed so far (the same statement the bench's
-- generator runs after its bulk load)
INSERT INTO order_sales_daily (day, owner_id, owner_team, region, customer_id, orders, ordered, returned, shipped,
                               invoiced)
SELECT (o.confirmed_at AT TIME ZONE 'Asia/Shanghai')::date, o.owner_id, o.owner_team, o.region, o.customer_id,
       count(DISTINCT o.id), sum(l.amount), sum(l.returned_quantity * l.unit_price),
       sum(l.shipped_quantity * l.unit_price), sum(l.invoiced_amount)
FROM orders o JOIN order_lines l ON l.order_id = o.id
WHERE o.confirmed_at IS NOT NULL AND o.status <> 'cancelled'
GROUP BY 1, 2, 3, 4, 5;
