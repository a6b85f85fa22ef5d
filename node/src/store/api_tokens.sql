-- Issue 12: read-only tokens for integrations (the metro's open-data portal,
-- a BI tool) calling /api/v1/ on a node with accounts. Only a hash of each
-- token is kept; the token is printed once when created. Local, never synced.
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
) STRICT;
