"""Per-credential rate limits: a token bucket per credential (a login or an API key), in the
gateway process.

    limiter = RateLimiter(rate=20, burst=100)     # 20 requests a second, bursts of 100
    wait = limiter.take(credential_id)            # 0.0: go on; else seconds until one is allowed

Each credential has a bucket of `burst` tokens that refills at `rate` tokens a second; a request
takes one, and a request that finds the bucket empty is refused (429 with `Retry-After`).

Why in the process and not in the gateway's database: a shared counter would add a write to the
database on every request (the overview's p99 budget is 100 ms), and a rate limit only needs to be
about right. The price: with N gateway replicas behind a load balancer each replica enforces its
own bucket, so a credential gets up to N × the configured rate; configure each replica with its
share (the rate you want ÷ replicas). A restarted replica starts with full buckets.

Everything here runs in one eventlet hub without yielding, so no lock is needed. Health, ready,
metrics, the docs and the OpenAPI document are never limited: they need no credential.
"""
import math
import time


class RateLimiter:
    def __init__(self, rate, burst, clock=time.monotonic, max_credentials=100_000):
        if rate < 0 or burst < 1:
            raise ValueError("the rate must be >= 0 and the burst >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self.clock = clock
        self.max_credentials = max_credentials
        self._buckets = {}  # credential -> (tokens, when)

    @property
    def enabled(self):
        return self.rate > 0

    def take(self, credential):
        """Take one token for `credential`: 0.0 when allowed, else the seconds until it would be."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, when = self._buckets.get(credential, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - when) * self.rate)
        if tokens >= 1.0:
            self._buckets[credential] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_credentials:
                self._forget_full(now)
            return 0.0
        self._buckets[credential] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget_full(self, now):
        """Drop the buckets that have refilled: a full bucket is the same as no bucket."""
        for credential, (tokens, when) in list(self._buckets.items()):
            if tokens + (now - when) * self.rate >= self.burst:
                del self._buckets[credential]


def retry_after(seconds):
    """The `Retry-After` value (whole seconds, at least 1) for a wait of `seconds`."""
    return max(1, math.ceil(seconds))
