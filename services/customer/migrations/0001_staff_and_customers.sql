-- The sales org (FR-119) as far as customers need it, and the customer archive (FR-01, FR-02,
-- FR-12, FR-13, FR-15) with its ownership ledger (FR-06, FR-07).

CREATE TABLE staff (
    id           uuid PRIMARY KEY,
    username     text        NOT NULL UNIQUE,
    display_name text        NOT NULL,
    role         text        NOT NULL,
    manager_id   uuid REFERENCES staff (id),
    team         text,
    region       text,
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      integer     NOT NULL DEFAULT 1
);

CREATE TABLE customers (
    id             uuid PRIMARY KEY,
    number         text        NOT NULL UNIQUE,
    name           text        NOT NULL,
    name_key       text        NOT NULL,
    tax_id         text,
    industry       text        NOT NULL,
    size           text        NOT NULL,
    region         text        NOT NULL,
    address        text,
    source         text        NOT NULL,
    status         text        NOT NULL DEFAULT 'potential',
    needs          text,
    bank_account   jsonb,
    owner_id       uuid REFERENCES staff (id),
    assigned_at    timestamptz,
    contact_due_by timestamptz,
    created_by     uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    version        integer     NOT NULL DEFAULT 1
);
-- FR-07: the first recorded claim wins; these indexes make "first" a fact, whatever the concurrency.
CREATE UNIQUE INDEX customers_name_key_unique ON customers (name_key);
CREATE UNIQUE INDEX customers_tax_id_unique ON customers (tax_id) WHERE tax_id IS NOT NULL;
CREATE INDEX customers_owner ON customers (owner_id, created_at DESC, id DESC);
CREATE INDEX customers_listing ON customers (created_at DESC, id DESC);

CREATE TABLE contacts (
    id             uuid PRIMARY KEY,
    customer_id    uuid        NOT NULL REFERENCES customers (id),
    name           text        NOT NULL,
    position       text,
    phone          text,
    email          text,
    decision_maker boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_customer ON contacts (customer_id);

-- Append-only ownership ledger: every claim and change of owner, who, when, why.
CREATE TABLE ownership_events (
    id          bigserial PRIMARY KEY,
    customer_id uuid        NOT NULL REFERENCES customers (id),
    kind        text        NOT NULL,      -- claim | assign | override | release
    owner_id    uuid,
    previous_owner_id uuid,
    actor_id    uuid,
    reason      text,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ownership_events_customer ON ownership_events (customer_id, id);
