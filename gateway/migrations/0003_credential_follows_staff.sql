-- A login follows its staff member in the org chart (staff.updated from the customer service):
-- role, team, display name and active. `staff_version` is the org chart's version of that staff
-- member last applied, so a late or repeated event never undoes a newer change.
ALTER TABLE credentials ADD COLUMN staff_version integer NOT NULL DEFAULT 0;
CREATE INDEX credentials_staff ON credentials (staff_id);
