-- The sales desk (issue 5): the price list it keeps from inventory's events, quotes and their
-- approval trail, contracts, orders and the order saga, what the order learns from deliveries and
-- invoices, quotas, returns, loans, targets. Money is numeric(18,2); prices include VAT.

-- The price list, kept from product.created / product.price_changed (newest event wins).
CREATE TABLE products (
    sku         text PRIMARY KEY,
    name        text          NOT NULL,
    unit        text,
    list_price  numeric(18,2) NOT NULL,
    floor_price numeric(18,2) NOT NULL,
    vat_rate    numeric(6,4)  NOT NULL,
    active      boolean       NOT NULL DEFAULT true,
    price_as_of timestamptz   NOT NULL,
    updated_at  timestamptz   NOT NULL DEFAULT now()
);

-- The newest owner/region of each customer we have heard of (customer.owner_changed/updated).
CREATE TABLE customer_snapshots (
    customer_id uuid PRIMARY KEY,
    owner_id    uuid,
    owner_team  text,
    region      text,
    as_of       timestamptz NOT NULL
);

-- Every approval step of every document, decided or not (who, role, when, decision, comment),
-- bound to the hash of the content it was given for. One chain per submission (round).
CREATE TABLE approval_steps (
    document_type text        NOT NULL,   -- quote | contract | return | loan
    document_id   uuid        NOT NULL,
    round         integer     NOT NULL,
    seq           integer     NOT NULL,
    relation      text        NOT NULL,
    role          text        NOT NULL,
    reason        text        NOT NULL,
    status        text        NOT NULL,   -- waiting | pending | approved | rejected | voided
    approver_id   uuid,
    approver_name text,
    approver_role text,
    assigned_at   timestamptz,
    decided_by    uuid,
    decided_at    timestamptz,
    comment       text,
    content_hash  text,
    PRIMARY KEY (document_type, document_id, round, seq)
);
CREATE INDEX approval_steps_approver ON approval_steps (approver_id) WHERE status = 'pending';

CREATE TABLE quotes (
    id            uuid PRIMARY KEY,
    number        text          NOT NULL UNIQUE,
    customer_id   uuid          NOT NULL,
    customer_name text,
    owner_id      uuid,
    owner_team    text,
    region        text,
    status        text          NOT NULL,
    valid_until   date          NOT NULL,
    notes         text,
    total         numeric(18,2) NOT NULL,
    content_hash  text          NOT NULL,
    major         boolean       NOT NULL DEFAULT false,
    round         integer       NOT NULL DEFAULT 0,
    requested_by  uuid,
    created_by    uuid          NOT NULL,
    created_at    timestamptz   NOT NULL,
    updated_at    timestamptz   NOT NULL,
    submitted_at  timestamptz,
    approved_at   timestamptz,
    sent_at       timestamptz,
    accepted_at   timestamptz,
    closed_at     timestamptz,
    order_id      uuid,
    contract_id   uuid,
    version       integer       NOT NULL DEFAULT 1
);
CREATE INDEX quotes_listing ON quotes (created_at DESC, id DESC);
CREATE INDEX quotes_customer ON quotes (customer_id);

CREATE TABLE quote_lines (
    quote_id    uuid          NOT NULL REFERENCES quotes (id),
    line_no     integer       NOT NULL,
    sku         text          NOT NULL,
    name        text,
    quantity    integer       NOT NULL CHECK (quantity > 0),
    unit_price  numeric(18,2) NOT NULL CHECK (unit_price >= 0),
    list_price  numeric(18,2) NOT NULL,
    floor_price numeric(18,2) NOT NULL,
    vat_rate    numeric(6,4)  NOT NULL,
    amount      numeric(18,2) NOT NULL,
    PRIMARY KEY (quote_id, line_no)
);

CREATE TABLE contracts (
    id                 uuid PRIMARY KEY,
    number             text          NOT NULL UNIQUE,
    quote_id           uuid          NOT NULL UNIQUE REFERENCES quotes (id),
    order_id           uuid,
    customer_id        uuid          NOT NULL,
    customer_name      text,
    owner_id           uuid,
    owner_team         text,
    region             text,
    status             text          NOT NULL,
    total              numeric(18,2) NOT NULL,
    lines              jsonb         NOT NULL,
    terms              jsonb         NOT NULL DEFAULT '{}',
    major              boolean       NOT NULL,
    content_hash       text          NOT NULL,
    round              integer       NOT NULL DEFAULT 0,
    requested_by       uuid,
    approved_at        timestamptz,
    customer_signatory text,
    customer_signed_at timestamptz,
    company_signed_by  uuid,
    company_signed_at  timestamptz,
    signed_at          timestamptz,
    registered_by      uuid,
    effective_at       timestamptz,
    completed_at       timestamptz,
    terminated_at      timestamptz,
    terminated_by      uuid,
    termination_reason text,
    archived_at        timestamptz,
    created_by         uuid          NOT NULL,
    created_at         timestamptz   NOT NULL,
    updated_at         timestamptz   NOT NULL,
    version            integer       NOT NULL DEFAULT 1
);
CREATE INDEX contracts_listing ON contracts (created_at DESC, id DESC);

CREATE TABLE orders (
    id                 uuid PRIMARY KEY,
    number             text          NOT NULL UNIQUE,
    kind               text          NOT NULL DEFAULT 'sale',   -- sale | replacement | loan_conversion
    customer_id        uuid          NOT NULL,
    customer_name      text,
    owner_id           uuid,
    owner_team         text,
    region             text,
    quote_id           uuid,
    contract_id        uuid,
    loan_id            uuid,
    service_request_id uuid,
    source_delivery_id uuid,
    delivery_id        uuid,
    warehouse          text,
    status             text          NOT NULL,
    total              numeric(18,2) NOT NULL,
    returned_amount    numeric(18,2) NOT NULL DEFAULT 0,
    invoiced_amount    numeric(18,2) NOT NULL DEFAULT 0,
    attempts           integer       NOT NULL DEFAULT 0,
    created_by         uuid          NOT NULL,
    created_at         timestamptz   NOT NULL,
    updated_at         timestamptz   NOT NULL,
    confirmed_at       timestamptz,
    credit_held_at     timestamptz,
    credit_released_by uuid,
    first_shipped_at   timestamptz,
    shipped_at         timestamptz,
    invoiced_at        timestamptz,
    paid_at            timestamptz,
    closed_at          timestamptz,
    cancelled_at       timestamptz,
    cancel_reason      text,
    version            integer       NOT NULL DEFAULT 1
);
CREATE INDEX orders_listing ON orders (created_at DESC, id DESC);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_confirmed ON orders (confirmed_at) WHERE confirmed_at IS NOT NULL;
CREATE UNIQUE INDEX orders_one_per_quote ON orders (quote_id) WHERE quote_id IS NOT NULL AND status <> 'cancelled';

CREATE TABLE order_lines (
    id                uuid PRIMARY KEY,
    order_id          uuid          NOT NULL REFERENCES orders (id),
    line_no           integer       NOT NULL,
    sku               text          NOT NULL,
    name              text,
    quantity          integer       NOT NULL CHECK (quantity > 0),
    unit_price        numeric(18,2) NOT NULL CHECK (unit_price >= 0),
    vat_rate          numeric(6,4)  NOT NULL,
    amount            numeric(18,2) NOT NULL,
    shipped_quantity  integer       NOT NULL DEFAULT 0 CHECK (shipped_quantity >= 0),
    returned_quantity integer       NOT NULL DEFAULT 0 CHECK (returned_quantity >= 0),
    invoiced_quantity integer       NOT NULL DEFAULT 0,
    invoiced_amount   numeric(18,2) NOT NULL DEFAULT 0,
    UNIQUE (order_id, line_no)
);

-- The saga log: every multi-step command that calls other services (confirm, credit-hold release,
-- cancel, replacement, loan issue/return/conversion, return receipt), its state at each step and a
-- lease so that exactly one replica at a time drives it (the request itself, or the recovery job
-- once the lease has run out after a crash).
CREATE TABLE sagas (
    id                    uuid PRIMARY KEY,
    kind                  text        NOT NULL,
    subject_id            uuid        NOT NULL,   -- the order, loan or return it moves
    order_id              uuid,
    attempt               integer     NOT NULL DEFAULT 1,
    state                 text        NOT NULL,   -- running | compensating | done | held | failed
    step                  text,
    stock_status          text        NOT NULL DEFAULT 'pending',
    credit_status         text        NOT NULL DEFAULT 'pending',
    stock_reservation_id  uuid,
    credit_reservation_id uuid,
    payload               jsonb       NOT NULL DEFAULT '{}',
    result                jsonb,
    error                 jsonb,
    lease_until           timestamptz NOT NULL,
    recoveries            integer     NOT NULL DEFAULT 0,
    started_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    finished_at           timestamptz
);
CREATE UNIQUE INDEX sagas_one_active ON sagas (subject_id) WHERE state IN ('running', 'compensating');
CREATE INDEX sagas_to_recover ON sagas (lease_until) WHERE state IN ('running', 'compensating');
CREATE INDEX sagas_order ON sagas (order_id, started_at);

-- Delivered lines, as goods.issued told them: what returns are checked against (FR-93).
CREATE TABLE delivery_lines (
    delivery_line_id  uuid PRIMARY KEY,
    delivery_id       uuid          NOT NULL,
    delivery_number   text,
    order_id          uuid          NOT NULL,
    order_line_id     uuid,
    loan_id           uuid,
    sku               text          NOT NULL,
    quantity          integer       NOT NULL,
    returned_quantity integer       NOT NULL DEFAULT 0 CHECK (returned_quantity >= 0),
    unit_price        numeric(18,2) NOT NULL,
    vat_rate          numeric(6,4)  NOT NULL,
    issued_at         timestamptz   NOT NULL,
    CHECK (returned_quantity <= quantity)
);
CREATE INDEX delivery_lines_delivery ON delivery_lines (delivery_id);
CREATE INDEX delivery_lines_order ON delivery_lines (order_id);

-- Invoices raised for an order (invoice.issued), their reversals and settlement.
CREATE TABLE order_invoices (
    invoice_id      uuid          NOT NULL,
    order_id        uuid          NOT NULL,
    number          text,
    amount          numeric(18,2) NOT NULL,
    reversed_amount numeric(18,2) NOT NULL DEFAULT 0,
    issued_at       timestamptz   NOT NULL,
    settled_at      timestamptz,
    PRIMARY KEY (invoice_id, order_id)
);
CREATE INDEX order_invoices_order ON order_invoices (order_id);

-- Marks of what an event already moved (belt and braces besides the inbox).
CREATE TABLE applied_movements (
    kind      text NOT NULL,   -- invoice_line | reversal_line | return_line
    key1      uuid NOT NULL,
    key2      text NOT NULL,
    PRIMARY KEY (kind, key1, key2)
);

-- Quotas (配额, FR-67): per month × (customer or market) × product, consumed by confirmed orders.
CREATE TABLE quotas (
    id          uuid PRIMARY KEY,
    period      text        NOT NULL,   -- YYYY-MM
    customer_id uuid,
    market      text,
    sku         text        NOT NULL,
    quantity    integer     NOT NULL CHECK (quantity >= 0),
    consumed    integer     NOT NULL DEFAULT 0,
    created_by  uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CHECK ((customer_id IS NULL) <> (market IS NULL)),
    CHECK (consumed >= 0 AND consumed <= quantity)
);
CREATE UNIQUE INDEX quotas_customer_key ON quotas (period, customer_id, sku) WHERE customer_id IS NOT NULL;
CREATE UNIQUE INDEX quotas_market_key ON quotas (period, market, sku) WHERE market IS NOT NULL;

CREATE TABLE quota_usage (
    quota_id uuid    NOT NULL REFERENCES quotas (id),
    order_id uuid    NOT NULL,
    quantity integer NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (quota_id, order_id)
);

-- Return requests (退货申请单, FR-93–FR-96).
CREATE TABLE returns (
    id                 uuid PRIMARY KEY,
    number             text        NOT NULL UNIQUE,
    delivery_id        uuid        NOT NULL,
    order_id           uuid        NOT NULL,
    customer_id        uuid        NOT NULL,
    owner_id           uuid,
    owner_team         text,
    region             text,
    status             text        NOT NULL,   -- requested | approved | received | rejected
    reason             text        NOT NULL,
    service_request_id uuid,
    content_hash       text        NOT NULL,
    round              integer     NOT NULL DEFAULT 1,
    requested_by       uuid        NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    approved_at        timestamptz,
    received_at        timestamptz,
    rejected_at        timestamptz
);
CREATE INDEX returns_listing ON returns (created_at DESC, id DESC);

CREATE TABLE return_lines (
    return_id         uuid          NOT NULL REFERENCES returns (id),
    delivery_line_id  uuid          NOT NULL,
    order_line_id     uuid,
    sku               text          NOT NULL,
    quantity          integer       NOT NULL CHECK (quantity > 0),
    received_quantity integer       NOT NULL DEFAULT 0,
    unit_price        numeric(18,2) NOT NULL,
    PRIMARY KEY (return_id, delivery_line_id)
);

-- Loans of trial goods (借出单, FR-98–FR-100).
CREATE TABLE loans (
    id            uuid PRIMARY KEY,
    number        text        NOT NULL UNIQUE,
    customer_id   uuid        NOT NULL,
    customer_name text,
    owner_id      uuid,
    owner_team    text,
    region        text,
    status        text        NOT NULL,
    due_date      date        NOT NULL,
    warehouse     text,
    content_hash  text        NOT NULL,
    round         integer     NOT NULL DEFAULT 1,
    requested_by  uuid        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    approved_at   timestamptz,
    issued_at     timestamptz,
    closed_at     timestamptz
);
CREATE INDEX loans_listing ON loans (created_at DESC, id DESC);

CREATE TABLE loan_lines (
    loan_id            uuid    NOT NULL REFERENCES loans (id),
    sku                text    NOT NULL,
    name               text,
    quantity           integer NOT NULL CHECK (quantity > 0),
    issued_quantity    integer NOT NULL DEFAULT 0,
    returned_quantity  integer NOT NULL DEFAULT 0,
    converted_quantity integer NOT NULL DEFAULT 0,
    PRIMARY KEY (loan_id, sku),
    CHECK (returned_quantity + converted_quantity <= issued_quantity)
);

-- Sales plans and targets (FR-112–FR-118): a target may be broken down into children that must
-- sum to it before it is published.
CREATE TABLE targets (
    id           uuid PRIMARY KEY,
    period       text          NOT NULL,
    period_start date          NOT NULL,
    period_end   date          NOT NULL,
    scope        text          NOT NULL,
    scope_id     text          NOT NULL,
    amount       numeric(18,2) NOT NULL CHECK (amount >= 0),
    parent_id    uuid REFERENCES targets (id),
    status       text          NOT NULL DEFAULT 'draft',   -- draft | published
    owner_team   text,
    created_by   uuid          NOT NULL,
    created_at   timestamptz   NOT NULL,
    updated_at   timestamptz   NOT NULL,
    published_at timestamptz,
    UNIQUE (period, scope, scope_id)
);
CREATE INDEX targets_parent ON targets (parent_id);
