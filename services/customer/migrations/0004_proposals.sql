-- FR-40: the proposal loop for an interested customer — draft/modify → internal review →
-- submitted to the customer → accepted, or rejected and modified again (the revision counts the
-- rounds). FR-41: a tender is a proposal with the tender's closing time; it is submitted before it.
CREATE TABLE proposals (
    id              uuid PRIMARY KEY,
    number          text           NOT NULL UNIQUE,
    opportunity_id  uuid           NOT NULL REFERENCES opportunities (id),
    customer_id     uuid           NOT NULL REFERENCES customers (id),
    owner_id        uuid REFERENCES staff (id),
    owner_team      text,
    kind            text           NOT NULL CHECK (kind IN ('proposal', 'tender')),
    title           text           NOT NULL,
    content         text           NOT NULL,
    amount          numeric(18, 2) CHECK (amount >= 0),
    closes_at       timestamptz,
    state           text           NOT NULL CHECK (state IN
                    ('draft', 'internal_review', 'approved', 'submitted', 'accepted', 'rejected')),
    revision        integer        NOT NULL DEFAULT 1 CHECK (revision >= 1),
    reviewed_by     uuid,
    reviewed_at     timestamptz,
    review_comment  text,
    submitted_at    timestamptz,
    responded_at    timestamptz,
    response        text,
    created_by      uuid           NOT NULL,
    created_at      timestamptz    NOT NULL DEFAULT now(),
    updated_at      timestamptz    NOT NULL DEFAULT now(),
    version         integer        NOT NULL DEFAULT 1,
    CHECK (kind <> 'tender' OR closes_at IS NOT NULL),
    CHECK (state <> 'rejected' OR response IS NOT NULL)
);
CREATE INDEX proposals_owner ON proposals (owner_id, created_at DESC, id DESC);
CREATE INDEX proposals_team ON proposals (owner_team, created_at DESC, id DESC);
CREATE INDEX proposals_listing ON proposals (created_at DESC, id DESC);
CREATE INDEX proposals_opportunity ON proposals (opportunity_id, created_at DESC);
CREATE INDEX proposals_in_review ON proposals (owner_team) WHERE state = 'internal_review';

-- Every step of every round, kept: who, when, what, and the revision it was on.
CREATE TABLE proposal_steps (
    id          bigserial   PRIMARY KEY,
    proposal_id uuid        NOT NULL REFERENCES proposals (id),
    action      text        NOT NULL,
    from_state  text,
    to_state    text        NOT NULL,
    revision    integer     NOT NULL,
    comment     text,
    actor_id    uuid        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proposal_steps_proposal ON proposal_steps (proposal_id, id);
