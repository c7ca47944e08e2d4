-- Reservations for orders, delivery notes (发货单) raised from them, loans (借出单), and the
-- customer snapshot every customer document carries (docs/INTEGRATION.md "Row-level access").

-- held --order.confirmed--> committed --all issued--> consumed; held|committed --> released;
-- held --hold time passed--> expired. At most one active (held or committed) per order.
CREATE TABLE reservations (
    id           uuid PRIMARY KEY,           -- the caller's reservation_id: the idempotency key
    order_id     uuid        NOT NULL,
    order_number text,
    warehouse    text        NOT NULL REFERENCES warehouses (code),
    status       text        NOT NULL CHECK (status IN ('held', 'committed', 'consumed', 'released', 'expired')),
    customer_id  uuid        NOT NULL,
    owner_id     uuid,
    owner_team   text,
    region       text,
    hold_until   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    committed_at timestamptz,
    closed_at    timestamptz,
    close_reason text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      integer     NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX reservations_one_active_per_order ON reservations (order_id)
    WHERE status IN ('held', 'committed');
CREATE INDEX reservations_expiry ON reservations (hold_until) WHERE status = 'held';
CREATE INDEX reservations_order ON reservations (order_id, created_at);
CREATE INDEX reservations_customer ON reservations (customer_id);

-- allocated = on delivery notes not cancelled (pending or issued); issued = goods gone out.
CREATE TABLE reservation_lines (
    reservation_id uuid           NOT NULL REFERENCES reservations (id),
    line_id        uuid           NOT NULL,  -- the order's line
    line_no        integer        NOT NULL,
    sku            text           NOT NULL REFERENCES products (sku),
    quantity       bigint         NOT NULL CHECK (quantity > 0),
    unit_price     numeric(18, 2) NOT NULL CHECK (unit_price >= 0),
    vat_rate       numeric(6, 4)  NOT NULL CHECK (vat_rate >= 0 AND vat_rate < 1),
    allocated      bigint         NOT NULL DEFAULT 0,
    issued         bigint         NOT NULL DEFAULT 0,
    PRIMARY KEY (reservation_id, line_id),
    CHECK (0 <= issued AND issued <= allocated AND allocated <= quantity)
);

-- pending --issue--> issued (posted: immutable, but for the customer snapshot);
-- pending --cancel--> cancelled. Loan conversions raise notes already issued (FR-99).
CREATE TABLE deliveries (
    id                 uuid PRIMARY KEY,
    number             text        NOT NULL UNIQUE,
    order_id           uuid        NOT NULL,
    order_number       text,
    reservation_id     uuid REFERENCES reservations (id),
    loan_id            uuid,
    warehouse          text        NOT NULL REFERENCES warehouses (code),
    status             text        NOT NULL CHECK (status IN ('pending', 'issued', 'cancelled')),
    customer_id        uuid        NOT NULL,
    owner_id           uuid,
    owner_team         text,
    region             text,
    goods_issue_id     uuid REFERENCES stock_documents (id),
    goods_issue_number text,
    created_by         uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    issued_by          uuid,
    issued_at          timestamptz,
    cancelled_by       uuid,
    cancelled_at       timestamptz,
    cancel_reason      text,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    version            integer     NOT NULL DEFAULT 1,
    CHECK (status <> 'issued' OR (issued_at IS NOT NULL AND goods_issue_id IS NOT NULL))
);
CREATE INDEX deliveries_order ON deliveries (order_id, created_at);
CREATE INDEX deliveries_listing ON deliveries (created_at DESC, id DESC);
CREATE INDEX deliveries_owner ON deliveries (owner_id, created_at DESC);
CREATE INDEX deliveries_customer ON deliveries (customer_id);
CREATE INDEX deliveries_issued ON deliveries (issued_at) WHERE status = 'issued';

CREATE TABLE delivery_lines (
    id            uuid PRIMARY KEY,
    delivery_id   uuid           NOT NULL REFERENCES deliveries (id),
    line_no       integer        NOT NULL,
    order_line_id uuid,
    sku           text           NOT NULL REFERENCES products (sku),
    quantity      bigint         NOT NULL CHECK (quantity > 0),
    unit_price    numeric(18, 2) NOT NULL,
    vat_rate      numeric(6, 4)  NOT NULL,
    returned      bigint         NOT NULL DEFAULT 0,
    UNIQUE (delivery_id, line_no),
    CHECK (returned >= 0 AND returned <= quantity)
);

-- A posted (issued or cancelled) delivery note changes no more, except for the customer
-- snapshot that customer.owner_changed / customer.updated move; lines never change but for
-- the returned counter; nothing is ever deleted.
CREATE FUNCTION deliveries_posted_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    movable text[] := ARRAY['owner_id', 'owner_team', 'region', 'updated_at', 'version'];
BEGIN
    IF OLD.status <> 'pending' AND (to_jsonb(NEW) - movable) IS DISTINCT FROM (to_jsonb(OLD) - movable) THEN
        RAISE EXCEPTION 'delivery % is % and cannot change', OLD.number, OLD.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER deliveries_immutable BEFORE UPDATE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION deliveries_posted_immutable();
CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE FUNCTION delivery_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'returned') IS DISTINCT FROM (to_jsonb(OLD) - 'returned') THEN
        RAISE EXCEPTION 'delivery lines cannot change' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER delivery_lines_content_immutable BEFORE UPDATE ON delivery_lines
    FOR EACH ROW EXECUTE FUNCTION delivery_lines_immutable();
CREATE TRIGGER delivery_lines_no_delete BEFORE DELETE ON delivery_lines
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Loans (the agreement and its approvals are the order service's): the goods out, per SKU.
-- Invariant per line: lent = returned + converted + still out, still out >= 0.
CREATE TABLE loans (
    id          uuid PRIMARY KEY,            -- the order service's loan id
    number      text,                        -- its LN- number
    warehouse   text        NOT NULL REFERENCES warehouses (code),
    status      text        NOT NULL CHECK (status IN ('out', 'closed')),
    customer_id uuid        NOT NULL,
    owner_id    uuid,
    owner_team  text,
    region      text,
    issue_document_id uuid  NOT NULL REFERENCES stock_documents (id),
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer     NOT NULL DEFAULT 1
);
CREATE INDEX loans_customer ON loans (customer_id);

CREATE TABLE loan_lines (
    loan_id   uuid   NOT NULL REFERENCES loans (id),
    sku       text   NOT NULL REFERENCES products (sku),
    quantity  bigint NOT NULL CHECK (quantity > 0),   -- lent
    returned  bigint NOT NULL DEFAULT 0,
    converted bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (loan_id, sku),
    CHECK (returned >= 0 AND converted >= 0 AND returned + converted <= quantity)
);

-- The newest customer event applied per customer, so an older one arriving late moves nothing.
CREATE TABLE customer_snapshot_versions (
    customer_id      uuid PRIMARY KEY,
    owner_changed_at timestamptz,
    region_changed_at timestamptz
);
