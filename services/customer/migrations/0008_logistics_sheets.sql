-- FR-18: the customer's shipping / logistics information sheet (储运信息), kept by the sales
-- secretary group and reviewed monthly: each save — a change or a confirmation that nothing
-- changed — restarts the month.
CREATE TABLE logistics_sheets (
    customer_id    uuid PRIMARY KEY REFERENCES customers (id),
    consignee      text        NOT NULL,
    address        text        NOT NULL,
    phone          text,
    carrier        text,
    delivery_notes text,
    reviewed_by    uuid        NOT NULL,
    reviewed_at    timestamptz NOT NULL,
    version        integer     NOT NULL DEFAULT 1
);
CREATE INDEX logistics_sheets_reviewed ON logistics_sheets (reviewed_at);
