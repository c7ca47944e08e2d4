-- Issue 11 (FR-90, FR-120–FR-123): the shipped and returned figures of the sales performance
-- report per Asia/Shanghai day × owner × team × region × customer, kept by the same transactions
-- that write the facts (db.ShippedDaily: a delivery note issued, a return receipt posted against
-- one, a customer's documents moved to a new owner or region). The report by rep, team, region or
-- customer sums these rows instead of joining every delivery line of the period. Shipped on the
-- day the goods were issued, returned on the day the return receipt was posted, both under the
-- delivery note's customer snapshot.
CREATE TABLE shipped_daily (
    day               date    NOT NULL,
    owner_id          uuid,
    owner_team        text,
    region            text,
    customer_id       uuid    NOT NULL,
    shipped           numeric NOT NULL DEFAULT 0,
    shipped_quantity  bigint  NOT NULL DEFAULT 0,
    returned          numeric NOT NULL DEFAULT 0,
    returned_quantity bigint  NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX shipped_daily_key ON shipped_daily (day, customer_id, owner_id, owner_team, region)
    NULLS NOT DISTINCT;
CREATE INDEX shipped_daily_customer ON shipped_daily (customer_id);

-- the backfill: every issue and return so far (the same statement the bench's generator runs after
-- its bulk load)
INSERT INTO shipped_daily (day, owner_id, owner_team, region, customer_id, shipped, shipped_quantity, returned,
                           returned_quantity)
SELECT day, owner_id, owner_team, region, customer_id, sum(shipped), sum(shipped_quantity), sum(returned),
       sum(returned_quantity)
FROM (SELECT (d.issued_at AT TIME ZONE 'Asia/Shanghai')::date AS day, d.owner_id, d.owner_team, d.region,
             d.customer_id, l.quantity * l.unit_price AS shipped, l.quantity AS shipped_quantity, 0 AS returned,
             0 AS returned_quantity
      FROM deliveries d JOIN delivery_lines l ON l.delivery_id = d.id WHERE d.status = 'issued'
      UNION ALL
      SELECT (s.posted_at AT TIME ZONE 'Asia/Shanghai')::date, d.owner_id, d.owner_team, d.region, d.customer_id,
             0, 0, l.quantity * l.unit_price, l.quantity
      FROM stock_documents s JOIN stock_document_lines l ON l.document_id = s.id
      JOIN deliveries d ON d.id = s.delivery_id WHERE s.kind = 'return_receipt') facts
GROUP BY 1, 2, 3, 4, 5;
