-- Issue 12: the invitations this admin node signed, so the administrators'
-- page and `accordo admin invitations` can list them with their state
-- (pending, redeemed by which key, expired). Local to the admin node (the
-- token itself is a bearer secret until redeemed; it is never synced).
CREATE TABLE admin_invitations (
    nonce BLOB PRIMARY KEY,
    comune TEXT NOT NULL,
    role TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    issued_by TEXT NOT NULL,
    token TEXT NOT NULL
) STRICT;
