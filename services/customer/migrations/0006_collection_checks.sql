-- FR-05: each week a rep submits the customer records they collected to their sales manager, who
-- checks them (or returns them with a comment, to be completed and submitted again). The records
-- of the submission are kept as they were when submitted.
CREATE TABLE collection_weeks (
    id           uuid PRIMARY KEY,
    rep_id       uuid        NOT NULL REFERENCES staff (id),
    rep_team     text,
    week         text        NOT NULL CHECK (week ~ '^[0-9]{4}-W[0-9]{2}$'),
    state        text        NOT NULL CHECK (state IN ('submitted', 'checked', 'returned')),
    customer_ids uuid[]      NOT NULL,
    submitted_at timestamptz NOT NULL,
    checked_by   uuid,
    checked_at   timestamptz,
    comment      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      integer     NOT NULL DEFAULT 1,
    UNIQUE (rep_id, week),
    CHECK (state <> 'returned' OR comment IS NOT NULL)
);
CREATE INDEX collection_weeks_team ON collection_weeks (rep_team, week DESC);
CREATE INDEX collection_weeks_listing ON collection_weeks (week DESC, id DESC);
