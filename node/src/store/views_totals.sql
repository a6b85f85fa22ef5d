-- Issue 14, aggregates. The zona omogenea a project states for itself (its
-- `zone` field) becomes a column, and two summary tables hold the money of
-- the projects of each document summed by (comune, own zone, mission,
-- archived) — and by funding source — kept by the same incremental updates
-- as the rows they sum, so that the dashboard's aggregates read a few
-- thousand rows instead of every project (a scan of 62,400 projects took
-- 35-140 ms per query, see BENCHMARKS.md). '' stands for "none" in the key
-- columns (a WITHOUT ROWID key cannot be NULL).
ALTER TABLE view_projects ADD COLUMN zone TEXT;
CREATE TABLE view_totals (
    doc TEXT NOT NULL,
    comune TEXT NOT NULL,
    zone TEXT NOT NULL,
    mission TEXT NOT NULL,
    archived INTEGER NOT NULL,
    projects INTEGER NOT NULL,
    financed_cents INTEGER NOT NULL,
    committed_cents INTEGER NOT NULL,
    paid_cents INTEGER NOT NULL,
    PRIMARY KEY (doc, comune, zone, mission, archived)
) STRICT, WITHOUT ROWID;
-- Per source: the projects with at least one line of it (each once, with
-- its money), and the lines' count and amounts.
CREATE TABLE view_source_totals (
    doc TEXT NOT NULL,
    comune TEXT NOT NULL,
    zone TEXT NOT NULL,
    mission TEXT NOT NULL,
    archived INTEGER NOT NULL,
    source TEXT NOT NULL,
    projects INTEGER NOT NULL,
    financed_cents INTEGER NOT NULL,
    committed_cents INTEGER NOT NULL,
    paid_cents INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    PRIMARY KEY (doc, comune, zone, mission, archived, source)
) STRICT, WITHOUT ROWID;
-- Rows derived before these existed lack them: every document's views are
-- marked as covering nothing, so the next open derives them again in full
-- (snapshots are kept).
UPDATE doc_state SET view_seq = 0;
