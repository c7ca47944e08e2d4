-- The catalog (SKU, unit, prices with their history), warehouses, stock levels per SKU x
-- warehouse and the append-only movement ledger they can be recomputed from (1.G, FR-77-FR-80).

-- Rows of append-only tables and posted documents are never changed or removed.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TABLE products (
    sku                 text PRIMARY KEY,
    name                text           NOT NULL,
    unit                text           NOT NULL,
    list_price          numeric(18, 2) NOT NULL CHECK (list_price >= 0),
    floor_price         numeric(18, 2) NOT NULL CHECK (floor_price >= 0),
    vat_rate            numeric(6, 4)  NOT NULL DEFAULT 0.13 CHECK (vat_rate >= 0 AND vat_rate < 1),
    warranty_months     integer        NOT NULL DEFAULT 12 CHECK (warranty_months >= 0),
    low_stock_threshold bigint         NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    active              boolean        NOT NULL DEFAULT true,
    created_by          uuid,
    created_at          timestamptz    NOT NULL DEFAULT now(),
    updated_at          timestamptz    NOT NULL DEFAULT now(),
    version             integer        NOT NULL DEFAULT 1,
    CHECK (floor_price <= list_price)
);
CREATE INDEX products_active ON products (active, sku);

-- Every price a product has had, who set it and when (the first row is the opening price).
CREATE TABLE price_history (
    id          bigserial PRIMARY KEY,
    sku         text           NOT NULL REFERENCES products (sku),
    list_price  numeric(18, 2) NOT NULL,
    floor_price numeric(18, 2) NOT NULL,
    vat_rate    numeric(6, 4)  NOT NULL,
    changed_by  uuid,
    changed_at  timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX price_history_sku ON price_history (sku, id);
CREATE TRIGGER price_history_append_only BEFORE UPDATE OR DELETE ON price_history
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE warehouses (
    code       text PRIMARY KEY,
    name       text        NOT NULL,
    address    text,
    is_default boolean     NOT NULL DEFAULT false,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX warehouses_one_default ON warehouses (is_default) WHERE is_default;
INSERT INTO warehouses (code, name, is_default) VALUES ('MAIN', 'Main warehouse', true);

-- The levels; changed only by guarded UPDATEs that also write a movement. The CHECK is the
-- last line of defence: no count can go negative, reserved never exceeds what is on hand.
CREATE TABLE stock_levels (
    sku        text        NOT NULL REFERENCES products (sku),
    warehouse  text        NOT NULL REFERENCES warehouses (code),
    on_hand    bigint      NOT NULL DEFAULT 0,
    reserved   bigint      NOT NULL DEFAULT 0,
    on_loan    bigint      NOT NULL DEFAULT 0,
    available  bigint GENERATED ALWAYS AS (on_hand - reserved) STORED,
    updated_at timestamptz NOT NULL DEFAULT now(),
    version    integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (sku, warehouse),
    CHECK (on_hand >= 0 AND reserved >= 0 AND on_loan >= 0 AND reserved <= on_hand)
);
CREATE INDEX stock_levels_warehouse ON stock_levels (warehouse, sku);

-- The ledger: one row per movement of one SKU in one warehouse, with the deltas it applied.
CREATE TABLE stock_movements (
    id              bigserial PRIMARY KEY,
    sku             text        NOT NULL REFERENCES products (sku),
    warehouse       text        NOT NULL REFERENCES warehouses (code),
    kind            text        NOT NULL CHECK (kind IN ('receipt', 'reservation', 'release', 'issue',
                                    'return_receipt', 'loan_issue', 'loan_return', 'loan_conversion',
                                    'adjustment')),
    quantity        bigint      NOT NULL CHECK (quantity <> 0),
    on_hand_delta   bigint      NOT NULL,
    reserved_delta  bigint      NOT NULL,
    on_loan_delta   bigint      NOT NULL,
    document_kind   text        NOT NULL,
    document_id     uuid        NOT NULL,
    document_number text,
    reason          text,
    actor_id        uuid,
    occurred_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_movements_item ON stock_movements (sku, warehouse, id);
CREATE INDEX stock_movements_document ON stock_movements (document_id);
CREATE TRIGGER stock_movements_append_only BEFORE UPDATE OR DELETE ON stock_movements
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER stock_movements_no_truncate BEFORE TRUNCATE ON stock_movements
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Posted stock documents: goods receipts (GR), adjustments (ADJ), goods issues (GI), return
-- receipts (RT, the red outbound of FR-96), loan issues (LO) and loan returns (LR). Immutable
-- once written: a correction is a reversing document (`reverses_id`), at most one per original.
CREATE TABLE stock_documents (
    id            uuid PRIMARY KEY,
    number        text        NOT NULL UNIQUE,
    kind          text        NOT NULL CHECK (kind IN ('goods_receipt', 'adjustment', 'goods_issue',
                                  'return_receipt', 'loan_issue', 'loan_return')),
    warehouse     text        NOT NULL REFERENCES warehouses (code),
    reason        text,
    reverses_id   uuid UNIQUE REFERENCES stock_documents (id),
    delivery_id   uuid,
    order_id      uuid,
    loan_id       uuid,
    return_id     uuid,
    return_number text,
    posted_by     uuid,
    posted_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_documents_delivery ON stock_documents (delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX stock_documents_loan ON stock_documents (loan_id) WHERE loan_id IS NOT NULL;
CREATE INDEX stock_documents_posted ON stock_documents (kind, posted_at);

CREATE TABLE stock_document_lines (
    document_id      uuid           NOT NULL REFERENCES stock_documents (id),
    line_no          integer        NOT NULL,
    sku              text           NOT NULL REFERENCES products (sku),
    quantity         bigint         NOT NULL CHECK (quantity <> 0),
    delivery_line_id uuid,
    order_line_id    uuid,
    unit_price       numeric(18, 2),
    vat_rate         numeric(6, 4),
    PRIMARY KEY (document_id, line_no)
);
CREATE TRIGGER stock_documents_immutable BEFORE UPDATE OR DELETE ON stock_documents
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER stock_document_lines_immutable BEFORE UPDATE OR DELETE ON stock_document_lines
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
