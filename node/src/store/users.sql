-- Issue 12: people who sign in to the node's web application. Local to this
-- node (never synced): a name, a role, and an argon2id password hash.
CREATE TABLE web_users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'editor')),
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
