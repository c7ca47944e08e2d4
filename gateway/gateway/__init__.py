"""The HTTP gateway: HTTP in, RPC out; authentication, authorization, idempotency, OpenAPI."""
