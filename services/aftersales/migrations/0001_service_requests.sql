-- After-sales (REQUIREMENTS 1.K, FR-97, FR-101–FR-108): service requests under SLA, their steps,
-- repairs, resolution actions reaching other departments, and the local copies of what other
-- services own (customer snapshot, products' warranty, delivered products) kept from their events.

-- The customer snapshot, from customer.created / customer.owner_changed / customer.updated (and
-- refreshed from customer.get_customer when a request is opened). `owner_as_of` orders owner moves:
-- an older owner_changed arriving late changes nothing.
CREATE TABLE customers (
    customer_id uuid PRIMARY KEY,
    number      text,
    name        text,
    owner_id    uuid,
    owner_team  text,
    region      text,
    owner_as_of timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Products as far as warranty needs them, from product.created / product.price_changed.
CREATE TABLE products (
    sku             text PRIMARY KEY,
    name            text,
    warranty_months integer CHECK (warranty_months IS NULL OR warranty_months >= 0),
    active          boolean,
    as_of           timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- What was actually delivered to whom, and when, from goods.issued (one row per delivery line).
CREATE TABLE delivered_lines (
    delivery_line_id uuid PRIMARY KEY,
    delivery_id      uuid        NOT NULL,
    delivery_number  text,
    order_id         uuid,
    order_number     text,
    loan_id          uuid,
    customer_id      uuid        NOT NULL,
    sku              text        NOT NULL,
    quantity         integer     NOT NULL CHECK (quantity > 0),
    issued_at        timestamptz NOT NULL,
    source_event     uuid        NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivered_lines_customer_sku ON delivered_lines (customer_id, sku, issued_at DESC);
CREATE INDEX delivered_lines_delivery ON delivered_lines (delivery_id, sku);

CREATE TABLE service_requests (
    id               uuid PRIMARY KEY,
    number           text        NOT NULL UNIQUE,
    type             text        NOT NULL CHECK (type IN
                         ('repair', 'replacement', 'return', 'complaint', 'training', 'consultation')),
    priority         text        NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status           text        NOT NULL CHECK (status IN
                         ('open', 'confirmed', 'assigned', 'in_progress', 'resolved', 'closed')),
    description      text        NOT NULL,
    -- the customer snapshot (row-level access), moved by customer.owner_changed
    customer_id      uuid        NOT NULL,
    customer_name    text,
    owner_id         uuid,
    owner_team       text,
    region           text,
    -- the product and the delivery it came from
    sku              text        NOT NULL,
    product_name     text,
    delivery_id      uuid,
    delivery_number  text,
    delivered_at     timestamptz,
    warranty_until   date,
    in_warranty      boolean,
    repeat_of        uuid REFERENCES service_requests (id),
    -- the SLA clock (working hours on the Chinese calendar)
    sla_hours        numeric(8, 2) NOT NULL,
    opened_at        timestamptz NOT NULL,
    opened_by        uuid        NOT NULL,
    due_at           timestamptz NOT NULL,
    confirmed_at     timestamptz,
    confirmed_by     uuid,
    engineer_id      uuid,
    engineer_name    text,
    assigned_at      timestamptz,
    assignment_count integer     NOT NULL DEFAULT 0,
    started_at       timestamptz,
    escalated_at     timestamptz,
    escalated_to     uuid,
    escalated_to_name text,
    resolved_at      timestamptz,
    resolved_by      uuid,
    resolution       text,
    action           text CHECK (action IN ('repair', 'replacement', 'return', 'advice')),
    action_quantity  integer CHECK (action_quantity IS NULL OR action_quantity > 0),
    sla_met          boolean,
    -- FR-108: resolved by the first engineer assigned; a repeat request for the same product on
    -- the same delivery within the repeat window turns it false
    first_time_fix   boolean,
    rating           smallint CHECK (rating BETWEEN 1 AND 5),
    feedback_comment text,
    feedback_at      timestamptz,
    feedback_by      uuid,
    closed_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    version          integer     NOT NULL DEFAULT 1,
    CHECK (status NOT IN ('resolved', 'closed') OR resolved_at IS NOT NULL),
    CHECK (status <> 'closed' OR rating IS NOT NULL)
);
CREATE INDEX service_requests_listing ON service_requests (opened_at DESC, id DESC);
CREATE INDEX service_requests_owner ON service_requests (owner_id, opened_at DESC);
CREATE INDEX service_requests_team ON service_requests (owner_team, opened_at DESC);
CREATE INDEX service_requests_customer ON service_requests (customer_id, sku);
CREATE INDEX service_requests_engineer ON service_requests (engineer_id, opened_at DESC);
-- the escalation job's work: unresolved, not yet escalated, by due time
CREATE INDEX service_requests_escalation ON service_requests (due_at)
    WHERE escalated_at IS NULL AND status NOT IN ('resolved', 'closed');
CREATE INDEX service_requests_repeat ON service_requests (repeat_of) WHERE repeat_of IS NOT NULL;

-- FR-106: every step of a request, who and when; append-only.
CREATE TABLE service_request_steps (
    id                 bigserial PRIMARY KEY,
    service_request_id uuid        NOT NULL REFERENCES service_requests (id),
    step               text        NOT NULL,
    from_status        text,
    to_status          text,
    actor_id           uuid        NOT NULL,
    actor_role         text        NOT NULL,
    actor_username     text,
    note               text,
    details            jsonb       NOT NULL DEFAULT '{}',
    occurred_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_request_steps_request ON service_request_steps (service_request_id, id);

-- FR-97: the repair of a unit (type repair only).
CREATE TABLE repairs (
    service_request_id uuid PRIMARY KEY REFERENCES service_requests (id),
    status         text        NOT NULL CHECK (status IN
                       ('received', 'diagnosing', 'quoted', 'approved', 'declined', 'repairing', 'repaired',
                        'returned')),
    in_warranty    boolean     NOT NULL,
    warranty_until date,
    diagnosis      text,
    quote_amount   numeric(18, 2) CHECK (quote_amount IS NULL OR quote_amount > 0),
    repaired       boolean     NOT NULL DEFAULT false,
    received_at    timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    version        integer     NOT NULL DEFAULT 1
);

-- Resolution actions that reach another department (order.request_return,
-- order.create_replacement): written in the resolving transaction, then called outside any
-- transaction, retried with backoff by a periodic job until the other side answers; idempotent
-- there by `request_id` (derived from the service request), so never lost and never doubled.
CREATE TABLE pending_actions (
    id                 uuid PRIMARY KEY,
    service_request_id uuid        NOT NULL UNIQUE REFERENCES service_requests (id),
    kind               text        NOT NULL CHECK (kind IN ('return', 'replacement')),
    target             text        NOT NULL,          -- "order.request_return"
    request_id         uuid        NOT NULL UNIQUE,
    payload            jsonb       NOT NULL,          -- the exact keyword arguments, sent alike every time
    status             text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts           integer     NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL,
    lease_until        timestamptz,
    last_error         text,
    result             jsonb,
    created_at         timestamptz NOT NULL DEFAULT now(),
    done_at            timestamptz
);
CREATE INDEX pending_actions_due ON pending_actions (next_attempt_at) WHERE status = 'pending';
