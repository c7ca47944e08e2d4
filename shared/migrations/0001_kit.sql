-- The kit's own tables, present in every service database.

-- Transactional outbox: written in the business transaction, published by the relay.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    payload      jsonb       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- Inbox: the events each handler has applied, written in the handler's own transaction.
CREATE TABLE inbox (
    handler    text        NOT NULL,
    event_id   uuid        NOT NULL,
    event_type text,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, event_id)
);

-- Messages a handler could not apply after its retries: parked here, never acked and lost.
CREATE TABLE failed_messages (
    id          bigserial PRIMARY KEY,
    handler     text        NOT NULL,
    event_type  text,
    event_id    uuid,
    payload     jsonb       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}',
    error       text        NOT NULL,
    attempts    integer     NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE UNIQUE INDEX failed_messages_once ON failed_messages (handler, event_id) WHERE event_id IS NOT NULL;

-- Idempotent commands: the first answer to (command, request_id), replayed to later calls.
CREATE TABLE idempotency_keys (
    command      text        NOT NULL,
    request_id   text        NOT NULL,
    request_hash text        NOT NULL,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (command, request_id)
);

-- Gap-free per-year document numbers.
CREATE TABLE document_sequences (
    prefix     text    NOT NULL,
    year       integer NOT NULL,
    last_value bigint  NOT NULL,
    PRIMARY KEY (prefix, year)
);
