-- toolauth schema 3: one default auth config per toolkit (made once, whoever asks first),
-- accounts that use their auth config's shared credentials, and when an account's current
-- tokens were issued (refresh timing never reads updated_at).
ALTER TABLE auth_configs ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX auth_configs_one_default ON auth_configs (toolkit) WHERE is_default;
ALTER TABLE connected_accounts ADD COLUMN shared BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE connected_accounts ADD COLUMN issued_at TIMESTAMPTZ;
