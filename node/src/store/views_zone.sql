-- Issue 14, aggregates: the zona omogenea a project states for itself (its
-- `zone` field), as a column, so the dashboard's sums group by zone without
-- reading each project's JSON record. Rows derived before this column
-- existed lack it: every document's views are marked as covering nothing,
-- so the next open derives them again in full (snapshots are kept).
ALTER TABLE view_projects ADD COLUMN zone TEXT;
UPDATE doc_state SET view_seq = 0;
