-- Issue 14, `report` at metro size: the report reads each project's
-- identity, state and state basis (the only column the list's covering
-- index lacked) from the index alone, in list order, instead of decoding
-- every project's JSON record (800 ms at 62,400 projects). The index is
-- replaced, not added, so a project's write maintains as many indexes as
-- before.
DROP INDEX view_projects_listed;
CREATE INDEX view_projects_listed
    ON view_projects (doc, cup IS NOT NULL, cup, id, comune, title, state, archived,
                      pnrr_measure, mission, component, zone,
                      financed_cents, committed_cents, paid_cents, basis);
