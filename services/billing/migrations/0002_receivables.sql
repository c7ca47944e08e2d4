-- Billing's books: the customers it bills (a copy kept from customer events), credit control
-- (CMR: formula and manual limits, reservations, holds, quarterly runs), delivery lines known from
-- goods.issued, invoices and red-letter invoices, receipts and their allocations (核销), statement
-- confirmations. Money is numeric(18,2); amounts of red invoices are stored positive.

-- The customers billing bills: tax details for special VAT invoices and the snapshot (owner,
-- team, region) every document carries for row-level access. `snapshot_at` is the occurred_at of
-- the newest event applied, so an older event arriving late never overwrites a newer one.
CREATE TABLE customers (
    customer_id  uuid PRIMARY KEY,
    number       text,
    name         text,
    tax_id       text,
    bank_account jsonb,
    owner_id     uuid,
    owner_team   text,
    region       text,
    snapshot_at  timestamptz NOT NULL DEFAULT '-infinity',
    owner_at     timestamptz NOT NULL DEFAULT '-infinity',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_owner ON customers (owner_id);

-- Credit accounts: the effective limit is the manual limit while its quarter lasts, else the
-- formula's (README "Credit formula").
ALTER TABLE credit_accounts
    ADD COLUMN formula_limit   numeric(18, 2) CHECK (formula_limit >= 0),
    ADD COLUMN formula_quarter text,
    ADD COLUMN formula_run_id  uuid,
    ADD COLUMN formula_inputs  jsonb,
    ADD COLUMN manual_limit    numeric(18, 2) CHECK (manual_limit >= 0),
    ADD COLUMN manual_quarter  text;

ALTER TABLE credit_limit_history
    ADD COLUMN kind    text NOT NULL DEFAULT 'opened' CHECK (kind IN ('opened', 'formula', 'manual')),
    ADD COLUMN quarter text,
    ADD COLUMN grade   text,
    ADD COLUMN inputs  jsonb;

-- One row per recomputation run (quarterly job or on demand); the job's row is unique per quarter.
CREATE TABLE credit_recompute_runs (
    id           uuid PRIMARY KEY,
    quarter      text        NOT NULL,
    trigger      text        NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    requested_by uuid,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    accounts     integer     NOT NULL DEFAULT 0,
    changed      integer     NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX credit_recompute_runs_scheduled ON credit_recompute_runs (quarter) WHERE trigger = 'scheduled';

-- Credit reserved for an order and not yet invoiced (exposure = open receivables + remaining).
CREATE TABLE credit_reservations (
    reservation_id    uuid PRIMARY KEY,
    order_id          uuid           NOT NULL,
    customer_id       uuid           NOT NULL REFERENCES credit_accounts (customer_id),
    amount            numeric(18, 2) NOT NULL CHECK (amount >= 0),
    remaining         numeric(18, 2) NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    status            text           NOT NULL CHECK (status IN ('reserved', 'consumed', 'released')),
    limit_at          numeric(18, 2) NOT NULL,
    exposure_at       numeric(18, 2) NOT NULL,
    override_by       uuid,
    override_role     text,
    override_username text,
    override_reason   text,
    created_at        timestamptz    NOT NULL DEFAULT now(),
    updated_at        timestamptz    NOT NULL DEFAULT now(),
    released_at       timestamptz,
    release_reason    text,
    CHECK ((override_by IS NULL) = (override_reason IS NULL))
);
CREATE UNIQUE INDEX credit_reservations_one_active ON credit_reservations (order_id) WHERE status = 'reserved';
CREATE INDEX credit_reservations_customer ON credit_reservations (customer_id) WHERE status = 'reserved';

-- Refusals (the order goes to credit hold), once per reservation id.
CREATE TABLE credit_holds (
    reservation_id uuid PRIMARY KEY,
    order_id       uuid           NOT NULL,
    customer_id    uuid           NOT NULL,
    requested      numeric(18, 2) NOT NULL,
    credit_limit   numeric(18, 2) NOT NULL,
    exposure       numeric(18, 2) NOT NULL,
    held_at        timestamptz    NOT NULL DEFAULT now()
);

-- Delivery-note lines whose goods were issued (goods.issued): what may be invoiced.
-- claimed: on blue invoices that are not cancelled; reversed: taken back by red invoices;
-- returned: goods back from the customer. Invoiceable = quantity - returned - (claimed - reversed).
CREATE TABLE delivery_lines (
    delivery_line_id  uuid PRIMARY KEY,
    delivery_id       uuid           NOT NULL,
    delivery_number   text,
    line_no           integer        NOT NULL,  -- the line's place in goods.issued
    order_id          uuid,
    order_number      text,
    order_line_id     uuid,
    loan_id           uuid,
    customer_id       uuid           NOT NULL,
    owner_id          uuid,
    owner_team        text,
    region            text,
    warehouse         text,
    sku               text           NOT NULL,
    quantity          integer        NOT NULL CHECK (quantity > 0),
    unit_price        numeric(18, 2) NOT NULL CHECK (unit_price >= 0),
    vat_rate          numeric(6, 4)  NOT NULL CHECK (vat_rate >= 0 AND vat_rate < 1),
    issued_at         timestamptz    NOT NULL,
    claimed_quantity  integer        NOT NULL DEFAULT 0,
    reversed_quantity integer        NOT NULL DEFAULT 0,
    returned_quantity integer        NOT NULL DEFAULT 0,
    source_event      uuid,
    created_at        timestamptz    NOT NULL DEFAULT now(),
    CHECK (returned_quantity BETWEEN 0 AND quantity),
    CHECK (reversed_quantity BETWEEN 0 AND claimed_quantity),
    CHECK (claimed_quantity - reversed_quantity BETWEEN 0 AND quantity)
);
CREATE INDEX delivery_lines_delivery ON delivery_lines (delivery_id);
CREATE INDEX delivery_lines_customer ON delivery_lines (customer_id);

-- Invoices: blue (red = false) draft -> certified -> issued (number given at issue, gap-free per
-- year) or cancelled before issue; red-letter invoices (red = true) are issued at once and
-- always reverse one issued blue invoice. A blue invoice's open amount is
-- total - reversed_amount - allocated_amount, never below zero.
CREATE TABLE invoices (
    id               uuid PRIMARY KEY,
    number           text UNIQUE,
    kind             text           NOT NULL CHECK (kind IN ('special', 'ordinary')),
    red              boolean        NOT NULL DEFAULT false,
    reverses         uuid REFERENCES invoices (id),
    status           text           NOT NULL CHECK (status IN ('draft', 'certified', 'issued', 'cancelled')),
    customer_id      uuid           NOT NULL,
    owner_id         uuid,
    owner_team       text,
    region           text,
    buyer_name       text,
    buyer_tax_id     text,
    buyer_bank       jsonb,
    currency         text           NOT NULL DEFAULT 'CNY',
    total            numeric(18, 2) NOT NULL CHECK (total >= 0),
    net_total        numeric(18, 2) NOT NULL,
    tax_total        numeric(18, 2) NOT NULL,
    reversed_amount  numeric(18, 2) NOT NULL DEFAULT 0,
    allocated_amount numeric(18, 2) NOT NULL DEFAULT 0,
    due_date         date,
    reason           text,
    return_id        uuid,
    remarks          text,
    created_by       uuid,
    created_at       timestamptz    NOT NULL DEFAULT now(),
    certified_by     uuid,
    certified_at     timestamptz,
    issued_by        uuid,
    issued_at        timestamptz,
    cancelled_by     uuid,
    cancelled_at     timestamptz,
    cancel_reason    text,
    settled_at       timestamptz,
    updated_at       timestamptz    NOT NULL DEFAULT now(),
    version          integer        NOT NULL DEFAULT 1,
    CHECK (red = (reverses IS NOT NULL)),
    CHECK ((status = 'issued') = (number IS NOT NULL AND issued_at IS NOT NULL)),
    CHECK (reversed_amount >= 0 AND allocated_amount >= 0 AND reversed_amount + allocated_amount <= total),
    CHECK (NOT red OR (reversed_amount = 0 AND allocated_amount = 0 AND status = 'issued'))
);
CREATE INDEX invoices_customer ON invoices (customer_id, created_at DESC, id DESC);
CREATE INDEX invoices_listing ON invoices (created_at DESC, id DESC);
CREATE INDEX invoices_reverses ON invoices (reverses) WHERE reverses IS NOT NULL;
CREATE INDEX invoices_open ON invoices (customer_id) WHERE status = 'issued' AND NOT red;

CREATE TABLE invoice_lines (
    id                uuid PRIMARY KEY,
    invoice_id        uuid           NOT NULL REFERENCES invoices (id),
    line_no           integer        NOT NULL,
    delivery_line_id  uuid           NOT NULL REFERENCES delivery_lines (delivery_line_id),
    delivery_id       uuid           NOT NULL,
    delivery_number   text,
    order_id          uuid,
    order_number      text,
    order_line_id     uuid,
    sku               text           NOT NULL,
    quantity          integer        NOT NULL CHECK (quantity > 0),
    unit_price        numeric(18, 2) NOT NULL,
    vat_rate          numeric(6, 4)  NOT NULL,
    amount            numeric(18, 2) NOT NULL CHECK (amount >= 0),
    net               numeric(18, 2) NOT NULL,
    tax               numeric(18, 2) NOT NULL,
    reverses_line     uuid REFERENCES invoice_lines (id),
    reversed_quantity integer        NOT NULL DEFAULT 0,
    reversed_amount   numeric(18, 2) NOT NULL DEFAULT 0,
    reversed_net      numeric(18, 2) NOT NULL DEFAULT 0,
    reversed_tax      numeric(18, 2) NOT NULL DEFAULT 0,
    UNIQUE (invoice_id, line_no),
    CHECK (amount = net + tax),
    CHECK (reversed_quantity BETWEEN 0 AND quantity),
    CHECK (reversed_amount BETWEEN 0 AND amount)
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, line_no);
CREATE INDEX invoice_lines_delivery_line ON invoice_lines (delivery_line_id);

-- Receipts (收款单): registered by sales, confirmed by finance; allocated to invoices (核销).
CREATE TABLE receipts (
    id               uuid PRIMARY KEY,
    number           text           NOT NULL UNIQUE,
    customer_id      uuid           NOT NULL,
    owner_id         uuid,
    owner_team       text,
    region           text,
    amount           numeric(18, 2) NOT NULL CHECK (amount > 0),
    allocated_amount numeric(18, 2) NOT NULL DEFAULT 0,
    currency         text           NOT NULL DEFAULT 'CNY',
    method           text           NOT NULL,
    reference        text,
    received_at      date           NOT NULL,
    note             text,
    status           text           NOT NULL CHECK (status IN ('registered', 'confirmed')),
    registered_by    uuid           NOT NULL,
    registered_at    timestamptz    NOT NULL DEFAULT now(),
    confirmed_by     uuid,
    confirmed_at     timestamptz,
    updated_at       timestamptz    NOT NULL DEFAULT now(),
    version          integer        NOT NULL DEFAULT 1,
    CHECK (allocated_amount BETWEEN 0 AND amount),
    CHECK (status = 'confirmed' OR allocated_amount = 0),
    CHECK ((status = 'confirmed') = (confirmed_at IS NOT NULL))
);
CREATE INDEX receipts_customer ON receipts (customer_id, registered_at DESC, id DESC);
CREATE INDEX receipts_listing ON receipts (registered_at DESC, id DESC);

-- An allocation is active until reversed (with who, when and why); never edited otherwise.
CREATE TABLE allocations (
    id              uuid PRIMARY KEY,
    seq             bigserial      NOT NULL,  -- the order allocations were made in
    receipt_id      uuid           NOT NULL REFERENCES receipts (id),
    invoice_id      uuid           NOT NULL REFERENCES invoices (id),
    customer_id     uuid           NOT NULL,
    amount          numeric(18, 2) NOT NULL CHECK (amount > 0),
    allocated_by    uuid           NOT NULL,
    allocated_at    timestamptz    NOT NULL DEFAULT now(),
    note            text,
    reversed_by     uuid,
    reversed_at     timestamptz,
    reversal_reason text,
    CHECK ((reversed_at IS NULL) = (reversal_reason IS NULL))
);
CREATE INDEX allocations_receipt ON allocations (receipt_id, seq);
CREATE INDEX allocations_invoice ON allocations (invoice_id, seq);

-- The customer's account as a statement shows it: + blue invoices issued, - red invoices
-- issued, - receipts confirmed (positive balance: the customer owes). Every entry is dated by
-- the moment it was posted, so a month that has ended never changes.
CREATE VIEW customer_ledger AS
    SELECT customer_id, issued_at AS posted_at, CASE WHEN red THEN 'red_invoice' ELSE 'invoice' END AS kind,
           id AS document_id, number, CASE WHEN red THEN -total ELSE total END AS amount
      FROM invoices WHERE status = 'issued'
    UNION ALL
    SELECT customer_id, confirmed_at, 'receipt', id, number, -amount
      FROM receipts WHERE status = 'confirmed';

-- Statement confirmation or dispute by the customer (FR-87, FR-89); the figures as confirmed.
CREATE TABLE statement_confirmations (
    customer_id uuid           NOT NULL,
    month       text           NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    status      text           NOT NULL CHECK (status IN ('confirmed', 'disputed')),
    opening     numeric(18, 2) NOT NULL,
    closing     numeric(18, 2) NOT NULL,
    contact     text,
    note        text,
    recorded_by uuid           NOT NULL,
    recorded_at timestamptz    NOT NULL DEFAULT now(),
    owner_id    uuid,
    owner_team  text,
    region      text,
    version     integer        NOT NULL DEFAULT 1,
    PRIMARY KEY (customer_id, month)
);
CREATE TABLE statement_confirmation_history (
    id          bigserial PRIMARY KEY,
    customer_id uuid        NOT NULL,
    month       text        NOT NULL,
    status      text        NOT NULL,
    contact     text,
    note        text,
    recorded_by uuid        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX statement_confirmation_history_key ON statement_confirmation_history (customer_id, month, id);
