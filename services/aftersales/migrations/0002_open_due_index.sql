-- Unresolved requests by due time, escalated or not: the sales_service_requests_overdue gauge
-- counts them every minute in every replica.
CREATE INDEX service_requests_open_due ON service_requests (due_at)
    WHERE status IN ('open', 'confirmed', 'assigned', 'in_progress');
