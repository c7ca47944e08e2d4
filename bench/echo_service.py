"""The nameko echo baseline: one RPC that answers its argument, on nameko's own entrypoint
(durable queue, persistent messages) with nothing of the platform around it."""
from nameko.rpc import rpc


class EchoService:
    name = "bench_echo"

    @rpc
    def echo(self, value):
        return value
