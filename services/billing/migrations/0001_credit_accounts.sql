-- Credit accounts (CMR, FR-63–FR-66): one per customer, opened when the customer is recorded.
CREATE TABLE credit_accounts (
    customer_id  uuid PRIMARY KEY,
    credit_limit numeric(18, 2) NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
    currency     text           NOT NULL DEFAULT 'CNY',
    grade        text CHECK (grade IN ('A', 'B', 'C', 'D')),
    opened_at    timestamptz    NOT NULL DEFAULT now(),
    updated_at   timestamptz    NOT NULL DEFAULT now(),
    version      integer        NOT NULL DEFAULT 1
);

-- Every change of a limit, who, when and why (FR-66); append-only.
CREATE TABLE credit_limit_history (
    id           bigserial PRIMARY KEY,
    customer_id  uuid           NOT NULL REFERENCES credit_accounts (customer_id),
    old_limit    numeric(18, 2),
    new_limit    numeric(18, 2) NOT NULL,
    reason       text           NOT NULL,
    changed_by   uuid,
    source_event uuid,
    changed_at   timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX credit_limit_history_customer ON credit_limit_history (customer_id, id);
