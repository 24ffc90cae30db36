-- toolauth schema 4: one default auth config per toolkit (made once, whoever asks first),
-- accounts that use their auth config's shared credentials, and when an account's current
-- tokens were issued (refresh timing never reads updated_at).
ALTER TABLE auth_configs ADD COLUMN is_default INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX auth_configs_one_default ON auth_configs (toolkit) WHERE is_default = 1;
ALTER TABLE connected_accounts ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connected_accounts ADD COLUMN issued_at TEXT;
