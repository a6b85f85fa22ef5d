-- Issue 14: documents as compacted snapshots plus the changes since, and the
-- query store: tables derived from the valid changes of each document, kept
-- current in the transaction that stores the changes (see node/src/views/).
CREATE TABLE doc_state (
    doc TEXT PRIMARY KEY,
    -- The views hold every change of the document up to this log position.
    view_seq INTEGER NOT NULL,
    -- Heads of the document the views were derived from (hex, sorted, comma-separated).
    heads TEXT NOT NULL,
    -- Changes of the document left out of the views (invalid under the
    -- registry, or refused by automerge): 32-byte hashes, sorted, concatenated.
    left_out BLOB NOT NULL,
    -- automerge save() of the document at snapshot_seq, and what it left out.
    snapshot BLOB,
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    snapshot_left_out BLOB NOT NULL DEFAULT x''
) STRICT;
CREATE TABLE view_projects (
    doc TEXT NOT NULL,
    id TEXT NOT NULL,
    comune TEXT NOT NULL,
    cup TEXT,
    import_key TEXT,
    title TEXT NOT NULL,
    archived INTEGER NOT NULL,
    state TEXT NOT NULL,
    basis TEXT NOT NULL,
    pnrr_measure TEXT,
    mission TEXT,
    component TEXT,
    cost_cents INTEGER,
    financed_cents INTEGER NOT NULL,
    committed_cents INTEGER NOT NULL,
    paid_cents INTEGER NOT NULL,
    -- The typed project (JSON), from which lists, exports and the report are built.
    record TEXT NOT NULL,
    PRIMARY KEY (doc, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX view_projects_cup ON view_projects (doc, cup);
CREATE INDEX view_projects_key ON view_projects (doc, import_key);
CREATE INDEX view_projects_comune ON view_projects (comune);
CREATE TABLE view_funding (
    doc TEXT NOT NULL,
    project TEXT NOT NULL,
    line TEXT NOT NULL,
    source TEXT NOT NULL,
    programme TEXT,
    amount_cents INTEGER NOT NULL,
    PRIMARY KEY (doc, project, line)
) STRICT, WITHOUT ROWID;
CREATE INDEX view_funding_source ON view_funding (source);
CREATE TABLE view_milestones (
    doc TEXT NOT NULL,
    project TEXT NOT NULL,
    milestone TEXT NOT NULL,
    code TEXT NOT NULL,
    description TEXT NOT NULL,
    due TEXT NOT NULL,
    achieved_date TEXT,
    PRIMARY KEY (doc, project, milestone)
) STRICT, WITHOUT ROWID;
CREATE INDEX view_milestones_due ON view_milestones (due);
CREATE TABLE view_locations (
    doc TEXT NOT NULL,
    project TEXT NOT NULL,
    location TEXT NOT NULL,
    comune TEXT,
    share_bp INTEGER NOT NULL,
    PRIMARY KEY (doc, project, location)
) STRICT, WITHOUT ROWID;
-- Indicator data of a territory (a comune's document, or `metro` for the plan).
CREATE TABLE view_indicators (
    doc TEXT NOT NULL,
    territory TEXT NOT NULL,
    code TEXT NOT NULL,
    baseline REAL,
    target REAL,
    record TEXT NOT NULL,
    PRIMARY KEY (doc, code)
) STRICT, WITHOUT ROWID;
CREATE TABLE view_observations (
    doc TEXT NOT NULL,
    territory TEXT NOT NULL,
    code TEXT NOT NULL,
    period TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (doc, code, period)
) STRICT, WITHOUT ROWID;
-- The plan's indicator catalog and zone memberships.
CREATE TABLE view_catalog (
    code TEXT PRIMARY KEY,
    record TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE view_zones (
    zone TEXT NOT NULL,
    name TEXT NOT NULL,
    comune TEXT NOT NULL,
    valid_from TEXT,
    valid_to TEXT,
    PRIMARY KEY (zone, comune)
) STRICT, WITHOUT ROWID;
