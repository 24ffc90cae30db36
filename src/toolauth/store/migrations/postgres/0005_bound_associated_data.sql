-- toolauth schema 5: the version of each row's associated data (issue 12, "the database
-- is not trusted"). Rows written before hold version 1 (the table and the row id only); the
-- store rewrites them as version 2 when it opens (the plain columns that decide where the
-- secret goes are bound to it too, and a connect link is kept under the SHA-256 of its id).
ALTER TABLE auth_configs ADD COLUMN aad_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE connected_accounts ADD COLUMN aad_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE connection_links ADD COLUMN aad_version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX auth_configs_old_aad ON auth_configs (aad_version) WHERE aad_version < 2;
CREATE INDEX connected_accounts_old_aad ON connected_accounts (aad_version) WHERE aad_version < 2;
CREATE INDEX connection_links_old_aad ON connection_links (aad_version) WHERE aad_version < 2;
