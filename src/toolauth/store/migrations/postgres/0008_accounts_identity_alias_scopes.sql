-- toolauth schema 9: who an account is at the provider (non-secret JSON), several accounts
-- per user and toolkit told apart by an alias (unique per user and toolkit), one default per
-- user and toolkit, and what a link asks for (its scopes; whether the app lets it connect
-- another provider identity over an existing account).
ALTER TABLE connected_accounts ADD COLUMN identity JSONB;
ALTER TABLE connected_accounts ADD COLUMN alias TEXT;
ALTER TABLE connected_accounts ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX connected_accounts_alias ON connected_accounts (user_id, toolkit, alias)
    WHERE alias IS NOT NULL;
CREATE UNIQUE INDEX connected_accounts_one_default ON connected_accounts (user_id, toolkit)
    WHERE is_default;
ALTER TABLE connection_links ADD COLUMN scopes JSONB;
ALTER TABLE connection_links ADD COLUMN allow_identity_change BOOLEAN NOT NULL DEFAULT FALSE;
