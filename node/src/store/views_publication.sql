-- Issue 17: the metropolitan office's publication decisions (plan document,
-- root keys `publication/<ISTAT>/<project id>`, domain/src/publication.rs),
-- one row per decision. A project is public when its decision is
-- `published`, or it is `comune` (or absent) and the comune published it.
CREATE TABLE view_publication (
    comune TEXT NOT NULL,
    project TEXT NOT NULL,
    -- `published`, `draft` or `comune`.
    decision TEXT NOT NULL,
    PRIMARY KEY (comune, project)
) STRICT, WITHOUT ROWID;
-- A plan document written by a newer metro node may already hold
-- decisions that an earlier version did not derive: derive the plan again.
UPDATE doc_state SET view_seq = 0 WHERE doc = 'plan';
