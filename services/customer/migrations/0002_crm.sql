-- The whole CRM (issue 3): the org chart with territories and authorities (FR-119), the customer
-- archive (FR-01, FR-12, FR-15–FR-17), ownership and the pool (FR-06–FR-11), classification
-- history (FR-13), customer reviews (FR-14), follow-ups and visits (FR-22–FR-29), opportunities
-- (FR-37–FR-39), and the indexes that keep every list fast at 100,000 customers.

CREATE EXTENSION IF NOT EXISTS pg_trgm;  -- trusted extension: the database owner may create it

-- Rows some tables must never lose or change (the ownership ledger): refuse UPDATE and DELETE.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- -- the org chart ---------------------------------------------------------------------------
-- Markets and their areas (FR-119: "markets split among directors"; the split is configuration).
CREATE TABLE territories (
    code        text PRIMARY KEY,
    name        text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('market', 'area')),
    parent_code text REFERENCES territories (code),
    head_id     uuid REFERENCES staff (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer     NOT NULL DEFAULT 1,
    CHECK ((kind = 'market') = (parent_code IS NULL))
);

ALTER TABLE staff
    ADD COLUMN territory text REFERENCES territories (code),
    ADD COLUMN capacity numeric(6, 2) NOT NULL DEFAULT 1 CHECK (capacity > 0),          -- FR-09 "ability"
    ADD COLUMN discount_authority numeric(5, 4) CHECK (discount_authority BETWEEN 0 AND 1),  -- NULL: role default
    ADD COLUMN price_authority numeric(5, 4) CHECK (price_authority BETWEEN 0 AND 1);
CREATE INDEX staff_manager ON staff (manager_id);
CREATE INDEX staff_role ON staff (role, region) WHERE active;
CREATE INDEX staff_team ON staff (team, created_at, id);
CREATE INDEX staff_listing ON staff (created_at, id);

-- -- customers -------------------------------------------------------------------------------
ALTER TABLE customers
    ADD COLUMN owner_team        text,           -- the owner's team, kept in step with the org chart
    ADD COLUMN problems          text,           -- FR-16: the customer's own view of its problems
    ADD COLUMN preferences       text,           -- FR-17
    ADD COLUMN contacted_at      timestamptz,    -- FR-10: first contact since the current assignment
    ADD COLUMN last_contact_at   timestamptz,
    ADD COLUMN reclaimable_since timestamptz,    -- FR-10: not contacted within a week of assignment
    ADD COLUMN first_order_at    timestamptz,    -- FR-13: set by the first order.confirmed
    ADD CONSTRAINT customers_status_check
        CHECK (status IN ('potential', 'tracking', 'progressing', 'key', 'loi_signed', 'signed'));
UPDATE customers c SET owner_team = s.team FROM staff s WHERE s.id = c.owner_id;

-- Lists: keyset pages of 50 ordered by (created_at, id) for every scope and filter.
CREATE INDEX customers_team ON customers (owner_team, created_at DESC, id DESC);
CREATE INDEX customers_status ON customers (status, created_at DESC, id DESC);
CREATE INDEX customers_region ON customers (region, created_at DESC, id DESC);
CREATE INDEX customers_industry ON customers (industry, created_at DESC, id DESC);
CREATE INDEX customers_search ON customers
    USING gin ((name || ' ' || number || ' ' || coalesce(tax_id, '')) gin_trgm_ops);
CREATE INDEX customers_pool ON customers (created_at DESC, id DESC)
    WHERE owner_id IS NULL OR reclaimable_since IS NOT NULL;
-- the contact-deadline job finds what is due without reading the table
CREATE INDEX customers_contact_due ON customers (contact_due_by)
    WHERE owner_id IS NOT NULL AND contacted_at IS NULL AND reclaimable_since IS NULL;
CREATE INDEX customers_created_by ON customers (created_by, created_at);

ALTER TABLE contacts ADD COLUMN created_by uuid;
CREATE INDEX contacts_listing ON contacts (customer_id, created_at, id);

-- The ownership ledger: append-only; every claim (also a refused one), assignment, override,
-- reassignment and reclaim, with who, when and why (FR-06–FR-11).
ALTER TABLE ownership_events
    ADD COLUMN owner_team text,
    ADD COLUMN source     text,
    ADD COLUMN evidence   text,
    ADD COLUMN request_id text UNIQUE;
ALTER TABLE ownership_events ADD COLUMN claimed_name text;  -- a refused claim: the name it was made for
CREATE TRIGGER ownership_events_append_only BEFORE UPDATE OR DELETE ON ownership_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE INDEX ownership_events_owner ON ownership_events (owner_id, occurred_at);

-- FR-13: every change of class, by hand or by the first confirmed order.
CREATE TABLE classification_changes (
    id              bigserial PRIMARY KEY,
    customer_id     uuid        NOT NULL REFERENCES customers (id),
    previous_status text,
    status          text        NOT NULL,
    source          text        NOT NULL CHECK (source IN ('recorded', 'manual', 'order')),
    order_id        uuid,
    reason          text,
    changed_by      uuid,
    occurred_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX classification_changes_customer ON classification_changes (customer_id, id);
INSERT INTO classification_changes (customer_id, previous_status, status, source, changed_by, occurred_at)
    SELECT id, NULL, status, 'recorded', created_by, created_at FROM customers;

-- FR-17: purchase history, from order.confirmed.
CREATE TABLE purchases (
    order_id     uuid PRIMARY KEY,
    customer_id  uuid          NOT NULL REFERENCES customers (id),
    order_number text          NOT NULL,
    total        numeric(18, 2) NOT NULL,
    confirmed_at timestamptz   NOT NULL,
    lines        jsonb         NOT NULL DEFAULT '[]',
    recorded_at  timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX purchases_customer ON purchases (customer_id, confirmed_at DESC, order_id DESC);

-- FR-20, FR-22, FR-27, FR-32: phone, e-mail, ... follow-ups recorded on the archive.
CREATE TABLE follow_ups (
    id          uuid PRIMARY KEY,
    customer_id uuid        NOT NULL REFERENCES customers (id),
    channel     text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    summary     text        NOT NULL,
    next_step   text,
    feedback    text,
    recorded_by uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX follow_ups_customer ON follow_ups (customer_id, occurred_at DESC, id DESC);
CREATE INDEX follow_ups_recorded_by ON follow_ups (recorded_by, occurred_at);

-- FR-14: customer review (status and creditworthiness), approved by a product manager.
CREATE TABLE reviews (
    id              uuid PRIMARY KEY,
    customer_id     uuid        NOT NULL REFERENCES customers (id),
    business_status text        NOT NULL,
    credit_opinion  text        NOT NULL,
    valid_until     date        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('submitted', 'approved', 'rejected')),
    submitted_by    uuid        NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    decided_by      uuid,
    decided_at      timestamptz,
    comment         text,
    version         integer     NOT NULL DEFAULT 1
);
CREATE INDEX reviews_customer ON reviews (customer_id, submitted_at DESC, id DESC);
CREATE UNIQUE INDEX reviews_one_pending ON reviews (customer_id) WHERE state = 'submitted';
CREATE INDEX reviews_valid ON reviews (customer_id, valid_until DESC) WHERE state = 'approved';

-- FR-23–FR-27, FR-29: visit plans, approval, return, log.
CREATE TABLE visits (
    id                 uuid PRIMARY KEY,
    number             text        NOT NULL UNIQUE,
    customer_id        uuid        NOT NULL REFERENCES customers (id),
    rep_id             uuid        NOT NULL REFERENCES staff (id),
    rep_team           text,
    planned_at         timestamptz NOT NULL,
    planned_return_at  timestamptz NOT NULL,
    purpose            text        NOT NULL,
    expected_issues    text,
    tracking_report    text,
    state              text        NOT NULL CHECK (state IN
                       ('planned', 'approved', 'rejected', 'cancelled', 'in_field', 'returned', 'logged')),
    approved_by        uuid,
    approved_at        timestamptz,
    decision_comment   text,
    checked_out_at     timestamptz,
    checked_in_at      timestamptz,
    expected_return_at timestamptz,
    delay_reason       text,
    return_overdue_at  timestamptz,
    log_due_by         timestamptz,
    log_overdue_at     timestamptz,
    visited_at         timestamptz,
    logged_at          timestamptz,
    late               boolean,
    summary            text,
    next_step          text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    version            integer     NOT NULL DEFAULT 1
);
CREATE INDEX visits_rep ON visits (rep_id, planned_at DESC, id DESC);
CREATE INDEX visits_team ON visits (rep_team, planned_at DESC, id DESC);
CREATE INDEX visits_listing ON visits (planned_at DESC, id DESC);
CREATE INDEX visits_customer ON visits (customer_id, planned_at DESC);
CREATE INDEX visits_logged ON visits (rep_id, visited_at) WHERE state = 'logged';
CREATE INDEX visits_log_due ON visits (log_due_by)
    WHERE state IN ('approved', 'in_field', 'returned') AND log_overdue_at IS NULL;
CREATE INDEX visits_return_due ON visits (coalesce(expected_return_at, planned_return_at))
    WHERE state = 'in_field' AND return_overdue_at IS NULL;

-- FR-37–FR-39: opportunities and the pipeline.
CREATE TABLE opportunities (
    id              uuid PRIMARY KEY,
    number          text           NOT NULL UNIQUE,
    customer_id     uuid           NOT NULL REFERENCES customers (id),
    owner_id        uuid REFERENCES staff (id),
    owner_team      text,
    title           text           NOT NULL,
    source          text           NOT NULL,
    stage           text           NOT NULL CHECK (stage IN
                    ('identified', 'qualified', 'proposal', 'negotiation', 'won', 'lost')),
    priority        text,
    probability     integer        NOT NULL CHECK (probability BETWEEN 0 AND 100),
    expected_amount numeric(18, 2) NOT NULL CHECK (expected_amount >= 0),
    expected_close  date,
    feasibility     text,
    follow_up_plan  text,
    reason          text,
    order_id        uuid,
    closed_at       timestamptz,
    closed_by       uuid,
    created_by      uuid           NOT NULL,
    created_at      timestamptz    NOT NULL DEFAULT now(),
    updated_at      timestamptz    NOT NULL DEFAULT now(),
    version         integer        NOT NULL DEFAULT 1,
    CHECK (stage <> 'won' OR order_id IS NOT NULL),
    CHECK (stage <> 'lost' OR reason IS NOT NULL)
);
CREATE INDEX opportunities_owner ON opportunities (owner_id, created_at DESC, id DESC);
CREATE INDEX opportunities_team ON opportunities (owner_team, created_at DESC, id DESC);
CREATE INDEX opportunities_listing ON opportunities (created_at DESC, id DESC);
CREATE INDEX opportunities_customer ON opportunities (customer_id, created_at DESC);
CREATE INDEX opportunities_open ON opportunities (owner_id)
    WHERE stage IN ('identified', 'qualified', 'proposal', 'negotiation');
