-- The credential's team (from the org chart), sent with the actor on every RPC so that services
-- can scope a sales manager's rows to their team (API.md "Row-level access").
ALTER TABLE credentials ADD COLUMN team text;
