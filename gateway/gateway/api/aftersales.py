"""API.md "After-sales" (aftersales service)."""


class AftersalesApi:
    pass
