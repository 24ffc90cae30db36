-- toolauth schema 1: auth configs, connected accounts, and the ids of encryption keys in use.
CREATE TABLE encryption_keys (
    key_id      TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);

CREATE TABLE auth_configs (
    id           TEXT PRIMARY KEY,
    toolkit      TEXT NOT NULL,
    name         TEXT NOT NULL,
    type         TEXT NOT NULL,
    auth_scheme  TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '[]',
    enabled      INTEGER NOT NULL DEFAULT 1,
    key_id       TEXT NOT NULL,
    secret       BLOB NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX auth_configs_by_toolkit ON auth_configs (toolkit, created_at);

CREATE TABLE connected_accounts (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    toolkit         TEXT NOT NULL,
    auth_config_id  TEXT NOT NULL REFERENCES auth_configs (id),
    status          TEXT NOT NULL,
    status_reason   TEXT,
    scopes          TEXT NOT NULL DEFAULT '[]',
    expires_at      TEXT,
    label           TEXT,
    data            TEXT NOT NULL DEFAULT '{}',
    key_id          TEXT NOT NULL,
    secret          BLOB NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX connected_accounts_by_user ON connected_accounts (user_id, toolkit, status);
CREATE INDEX connected_accounts_by_config ON connected_accounts (auth_config_id, status);
