"""API.md "Reports" and the aggregated views (overview, timeline)."""


class ReportsApi:
    pass
