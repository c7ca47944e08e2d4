-- FR-04: collected records are entered within 2 working days of collection; a later entry is
-- flagged (the customer state machine's LATE_ENTRY). `collected_at` is when the data was gathered
-- (a trade fair, a call); NULL means at entry.
ALTER TABLE customers
    ADD COLUMN collected_at timestamptz,
    ADD COLUMN late_entry   boolean NOT NULL DEFAULT false;
CREATE INDEX customers_late_entry ON customers (created_by, created_at) WHERE late_entry;
