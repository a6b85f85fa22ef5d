-- Issue 17, the plan in public. A project's and an indicator's publication
-- state become columns (0 = draft, the default: nothing becomes public by
-- accident), and the plan's structure (axes, objectives, actions, strategic
-- projects, zones, periods) gets a table so that the public portal reads
-- it from the query store instead of materialising the plan per request.
ALTER TABLE view_projects ADD COLUMN published INTEGER NOT NULL DEFAULT 0;
CREATE INDEX view_projects_published ON view_projects (published, comune);
ALTER TABLE view_catalog ADD COLUMN published INTEGER NOT NULL DEFAULT 0;
CREATE TABLE view_plan (
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    parent TEXT,
    -- The typed plan item (JSON).
    record TEXT NOT NULL,
    PRIMARY KEY (kind, code)
) STRICT, WITHOUT ROWID;
-- Rows derived before these existed lack them: every document's views are
-- marked as covering nothing, so the next open derives them again in full
-- (snapshots are kept).
UPDATE doc_state SET view_seq = 0;
