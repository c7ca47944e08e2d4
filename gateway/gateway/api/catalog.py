"""API.md "Catalog and stock" and "Deliveries" (inventory service)."""


class CatalogApi:
    pass
