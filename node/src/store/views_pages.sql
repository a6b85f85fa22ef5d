-- Issue 12, the web pages at metro size (312 comuni × 200 projects). Each
-- document's newest change time, kept by the views' updates, so the
-- dashboard does not parse every document's newest change on every load
-- (NULL until the document's views are next updated: read the old way);
-- and covering indexes so the dashboard's counts by state, the late
-- milestones and the project list's pages read slim index entries instead
-- of every project row with its record (measured: 31 → 9 ms, 51 → 30 ms,
-- 16 → 5 ms per query; BENCHMARKS.md).
ALTER TABLE doc_state ADD COLUMN last_change_ms INTEGER;
CREATE INDEX view_projects_by_state
    ON view_projects (archived, state, financed_cents, committed_cents, paid_cents);
CREATE INDEX view_projects_listed
    ON view_projects (doc, cup IS NOT NULL, cup, id, comune, title, state, archived,
                      pnrr_measure, mission, component, zone,
                      financed_cents, committed_cents, paid_cents);
CREATE INDEX view_milestones_open ON view_milestones (achieved_date, due, doc, project);
