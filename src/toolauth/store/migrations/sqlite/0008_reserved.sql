-- A placeholder: this schema number belongs to a change made on another branch at the same
-- time. It keeps the numbers contiguous on this branch; delete it when that change merges.
SELECT 1;
