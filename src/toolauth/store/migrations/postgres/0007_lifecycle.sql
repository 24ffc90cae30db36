-- toolauth schema 7: the connection lifecycle. Events (one per state change, written in the
-- transaction of the change), webhook endpoints and their outbox of deliveries (written in
-- that same transaction), an append-only audit log, and the keeper's probe schedule.
CREATE TABLE events (
    seq                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    type                  TEXT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    user_id               TEXT,
    toolkit               TEXT,
    auth_config_id        TEXT,
    connected_account_id  TEXT,
    webhook_id            TEXT,
    status                TEXT,
    reason                TEXT
);
CREATE INDEX events_by_user ON events (user_id, seq);
CREATE INDEX events_by_time ON events (created_at);

CREATE TABLE webhook_endpoints (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    events           JSONB NOT NULL DEFAULT '[]',
    description      TEXT,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason  TEXT,
    failing_since    TIMESTAMPTZ,
    key_id           TEXT NOT NULL,
    secret           BYTEA NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_seq        BIGINT NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, status);

CREATE TABLE audit_log (
    seq                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    created_at            TIMESTAMPTZ NOT NULL,
    actor                 TEXT NOT NULL,
    actor_id              TEXT,
    action                TEXT NOT NULL,
    outcome               TEXT NOT NULL,
    user_id               TEXT,
    toolkit               TEXT,
    auth_config_id        TEXT,
    connected_account_id  TEXT,
    detail                TEXT
);
CREATE INDEX audit_log_by_user ON audit_log (user_id, created_at);
CREATE INDEX audit_log_by_time ON audit_log (created_at);

CREATE TABLE keeper_probes (
    connected_account_id  TEXT PRIMARY KEY REFERENCES connected_accounts (id) ON DELETE CASCADE,
    probed_at             TIMESTAMPTZ,
    lease_owner           TEXT,
    lease_until           TIMESTAMPTZ
);
