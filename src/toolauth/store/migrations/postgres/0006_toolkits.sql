-- toolauth schema 6: toolkit definitions registered, discovered or added at run time, shared
-- by every process of a deployment. ``definition`` is the JSON of a catalog ToolkitDefinition
-- (not secret: no encryption); ``source`` says where it came from (registered, discovered,
-- file, mcp); ``version`` goes up with every change. ``mac`` authenticates slug, source,
-- version and definition with the encryption key ``key_id`` (AES-GCM over no plaintext): a
-- row edited without the key is refused, so the database cannot point a secret elsewhere.
CREATE TABLE toolkits (
    slug        TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    definition  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    key_id      TEXT NOT NULL,
    mac         BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
