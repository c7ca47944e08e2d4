"""The gateway's endpoints, one module per area of API.md, each a mixin of GatewayService.

A module declares its schemas (marshmallow: they validate requests and generate the OpenAPI
document), its role sets and a mixin class whose methods are `@api` endpoints calling the owning
service through the RPC dependencies that GatewayService declares (`self.customer`,
`self.order`, `self.inventory`, `self.billing`, `self.aftersales`).
"""
