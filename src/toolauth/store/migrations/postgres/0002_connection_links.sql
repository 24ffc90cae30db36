-- toolauth schema 2: connect links, and a refresh lease on accounts (single-flight refresh
-- across processes and instances).
CREATE TABLE connection_links (
    id                    TEXT PRIMARY KEY,
    connected_account_id  TEXT NOT NULL REFERENCES connected_accounts (id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL,
    toolkit               TEXT NOT NULL,
    auth_config_id        TEXT NOT NULL,
    auth_scheme           TEXT NOT NULL,
    status                TEXT NOT NULL,
    pending_key           TEXT NOT NULL,
    callback_url          TEXT,
    redirect_uri          TEXT,
    state_hash            TEXT,
    error                 TEXT,
    error_description     TEXT,
    key_id                TEXT NOT NULL,
    secret                BYTEA NOT NULL,
    version               BIGINT NOT NULL DEFAULT 1,
    expires_at            TIMESTAMPTZ NOT NULL,
    completed_at          TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX connection_links_one_pending ON connection_links (pending_key)
    WHERE status = 'PENDING';
CREATE UNIQUE INDEX connection_links_by_state ON connection_links (state_hash)
    WHERE state_hash IS NOT NULL;
CREATE INDEX connection_links_by_account ON connection_links (connected_account_id);
ALTER TABLE connected_accounts ADD COLUMN refresh_lease_until TIMESTAMPTZ;
ALTER TABLE connected_accounts ADD COLUMN refresh_lease_owner TEXT;
