-- toolauth schema 8: the connection lifecycle. Events (one per state change, written in the
-- transaction of the change), webhook endpoints and their outbox of deliveries (written in
-- that same transaction), an append-only audit log, and the keeper's probe schedule.
CREATE TABLE events (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    type                  TEXT NOT NULL,
    created_at            TEXT NOT NULL,
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
    events           TEXT NOT NULL DEFAULT '[]',
    description      TEXT,
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_reason  TEXT,
    failing_since    TEXT,
    key_id           TEXT NOT NULL,
    secret           BLOB NOT NULL,
    version          INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_seq        INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_until      TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, status);

CREATE TABLE audit_log (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    created_at            TEXT NOT NULL,
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
    probed_at             TEXT,
    lease_owner           TEXT,
    lease_until           TEXT
);
