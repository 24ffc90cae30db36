-- toolauth schema 1: auth configs, connected accounts, and the ids of encryption keys in use.
CREATE TABLE encryption_keys (
    key_id      TEXT PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE auth_configs (
    id           TEXT PRIMARY KEY,
    toolkit      TEXT NOT NULL,
    name         TEXT NOT NULL,
    type         TEXT NOT NULL,
    auth_scheme  TEXT NOT NULL,
    scopes       JSONB NOT NULL DEFAULT '[]',
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    key_id       TEXT NOT NULL,
    secret       BYTEA NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX auth_configs_by_toolkit ON auth_configs (toolkit, created_at);

CREATE TABLE connected_accounts (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    toolkit         TEXT NOT NULL,
    auth_config_id  TEXT NOT NULL REFERENCES auth_configs (id),
    status          TEXT NOT NULL,
    status_reason   TEXT,
    scopes          JSONB NOT NULL DEFAULT '[]',
    expires_at      TIMESTAMPTZ,
    label           TEXT,
    data            JSONB NOT NULL DEFAULT '{}',
    key_id          TEXT NOT NULL,
    secret          BYTEA NOT NULL,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX connected_accounts_by_user ON connected_accounts (user_id, toolkit, status);
CREATE INDEX connected_accounts_by_config ON connected_accounts (auth_config_id, status);
