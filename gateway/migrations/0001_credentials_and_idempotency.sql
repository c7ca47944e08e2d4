-- The gateway's own data: credentials (each tied to a staff member of the customer service's
-- org chart) and the answers of idempotent POSTs. No business data lives here.

CREATE TABLE credentials (
    id             uuid        PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('password', 'api_key')),
    username       text        NOT NULL,        -- login name; for an API key, its staff member's
    name           text,                        -- API keys: a label ("ERP sync")
    secret_hash    text        NOT NULL,        -- argon2 hash (password) or sha256 hex (API key)
    key_prefix     text,                        -- API keys: the first characters, to recognise one
    staff_id       uuid        NOT NULL,        -- the staff member (customer service) acting
    role           text        NOT NULL,
    display_name   text        NOT NULL,
    active         boolean     NOT NULL DEFAULT true,
    staff_recorded boolean     NOT NULL DEFAULT true,  -- false until the org chart has the staff member
    created_by     uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'api_key' OR (name IS NOT NULL AND key_prefix IS NOT NULL))
);
CREATE UNIQUE INDEX credentials_username ON credentials (lower(username)) WHERE kind = 'password';
CREATE UNIQUE INDEX credentials_api_key ON credentials (secret_hash) WHERE kind = 'api_key';
CREATE INDEX credentials_listing ON credentials (kind, created_at, id);
CREATE INDEX credentials_unrecorded ON credentials (id) WHERE NOT staff_recorded;

-- One row per (credential, Idempotency-Key): inserted "in progress" (status NULL) before the
-- command runs, so a concurrent duplicate cannot run it too; filled with the answer afterwards.
CREATE TABLE idempotency_records (
    credential_id    uuid        NOT NULL REFERENCES credentials (id) ON DELETE CASCADE,
    key              text        NOT NULL,
    method           text        NOT NULL,
    path             text        NOT NULL,
    request_hash     text        NOT NULL,   -- sha256 of method, path and the canonical JSON body
    status           integer,                -- NULL while in progress
    response_headers jsonb,
    response_body    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (credential_id, key)
);
CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);
