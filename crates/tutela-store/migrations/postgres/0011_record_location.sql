-- Where a record is stored (issue 5, R6): a registered storage location, checked against
-- the category's residency when the record is written. NULL: the default location.
ALTER TABLE records ADD COLUMN location_id TEXT REFERENCES storage_locations(id);
