-- FR-33: field market intelligence — trends, customer demands, competitor moves, dealer requests —
-- and problems of the sales work, reported by the field and escalated quickly: a problem (or any
-- report marked urgent) is acknowledged by the reporter's manager by the end of the next working
-- day (Chinese calendar); each report is kept with who answered and how.
CREATE TABLE intelligence (
    id              uuid PRIMARY KEY,
    number          text        NOT NULL UNIQUE,
    kind            text        NOT NULL CHECK (kind IN ('trend', 'demand', 'competitor', 'dealer_request', 'problem')),
    customer_id     uuid REFERENCES customers (id),
    region          text,
    summary         text        NOT NULL,
    details         text,
    urgent          boolean     NOT NULL,
    reported_by     uuid        NOT NULL REFERENCES staff (id),
    reporter_team   text,
    state           text        NOT NULL CHECK (state IN ('reported', 'acknowledged')),
    response_due_by timestamptz,
    acknowledged_by uuid,
    acknowledged_at timestamptz,
    response        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer     NOT NULL DEFAULT 1,
    CHECK (NOT urgent OR response_due_by IS NOT NULL),
    CHECK (state <> 'acknowledged' OR response IS NOT NULL)
);
CREATE INDEX intelligence_reporter ON intelligence (reported_by, created_at DESC, id DESC);
CREATE INDEX intelligence_team ON intelligence (reporter_team, created_at DESC, id DESC);
CREATE INDEX intelligence_listing ON intelligence (created_at DESC, id DESC);
CREATE INDEX intelligence_waiting ON intelligence (response_due_by) WHERE state = 'reported' AND urgent;
