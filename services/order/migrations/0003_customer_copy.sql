-- The order service's own copy of what it needs of each customer to place an order without asking
-- the customer service (DESIGN.md §1, issue 11): the name beside the owner, team and region it
-- already kept. `owner_known` is true once an event that carries the owner has been applied (the
-- rows kept so far may hold only a region); `name_as_of` orders name changes on their own, so a
-- late customer.created still names a customer whose owner changed first; `revision` counts the
-- changes applied, so a placement can tell that an event landed while it asked by RPC.
ALTER TABLE customer_snapshots
    ADD COLUMN name        text,
    ADD COLUMN name_as_of  timestamptz,
    ADD COLUMN owner_known boolean NOT NULL DEFAULT false,
    ADD COLUMN revision    bigint  NOT NULL DEFAULT 0;
