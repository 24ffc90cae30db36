-- toolauth schema 5: a link whose grant waits for the app's confirmation keeps the SHA-256 of
-- its one-time code (never the code), found by it once; the sweep finds the unconfirmed ones
-- past their time by status and expiry.
ALTER TABLE connection_links ADD COLUMN confirm_hash TEXT;
CREATE UNIQUE INDEX connection_links_by_confirm ON connection_links (confirm_hash)
    WHERE confirm_hash IS NOT NULL;
CREATE INDEX connection_links_by_status ON connection_links (status, expires_at);
