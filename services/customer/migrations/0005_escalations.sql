-- FR-28: a customer the rep expects to be hard to win is escalated to the manager for a joint
-- approach; FR-30: the manager guides on it daily, from the rep's feedback (each note kept). One
-- open escalation per customer; guidance is due by the end of the next working day after the
-- escalation or the last guidance (Chinese calendar).
CREATE TABLE escalations (
    id              uuid PRIMARY KEY,
    number          text        NOT NULL UNIQUE,
    customer_id     uuid        NOT NULL REFERENCES customers (id),
    owner_id        uuid REFERENCES staff (id),
    owner_team      text,
    raised_by       uuid        NOT NULL,
    reason          text        NOT NULL,
    help_wanted     text,
    state           text        NOT NULL CHECK (state IN ('open', 'guided', 'closed')),
    guidance_due_by timestamptz NOT NULL,
    outcome         text,
    closed_by       uuid,
    closed_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer     NOT NULL DEFAULT 1,
    CHECK (state <> 'closed' OR outcome IS NOT NULL)
);
CREATE UNIQUE INDEX escalations_one_open ON escalations (customer_id) WHERE state <> 'closed';
CREATE INDEX escalations_owner ON escalations (owner_id, created_at DESC, id DESC);
CREATE INDEX escalations_team ON escalations (owner_team, created_at DESC, id DESC);
CREATE INDEX escalations_listing ON escalations (created_at DESC, id DESC);

CREATE TABLE escalation_notes (
    id            bigserial   PRIMARY KEY,
    escalation_id uuid        NOT NULL REFERENCES escalations (id),
    author_id     uuid        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('feedback', 'guidance')),
    note          text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX escalation_notes_escalation ON escalation_notes (escalation_id, id);
