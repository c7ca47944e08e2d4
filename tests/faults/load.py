"""The load of the fault suite (issue 9): integrators calling the gateway's HTTP API as the API
asks of one — every POST with an Idempotency-Key, and a request answered 5xx, not answered, or
409 IDEMPOTENCY_KEY_IN_USE sent again with the same key (safe: every command is idempotent) —
and the tally of a run: orders lost, duplicated and stuck, read from the order service's books.

`Driver` is the retrying client (the rolling upgrade's load builds on it too); `OrderLoad` places
and confirms orders, bounded in count and time, on loopback only.
"""
import importlib.util
import logging
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import eventlet
import requests

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)
RETRYABLE = {429, 500, 502, 503, 504}  # 429: the gateway's rate limit — a client waits and resends
# 409s to resend as they are, a moment later: the same key's first attempt, or a saga on the order,
# still running; the warehouse not yet told of the confirmation (order.confirmed commits the
# reservation a delivery note is made from — eventually consistent, later under a fault)
RETRYABLE_CONFLICTS = ('"IDEMPOTENCY_KEY_IN_USE"', '"CONFIRMATION_IN_PROGRESS"', '"RESERVATION_NOT_COMMITTED"')
RETRY_FOR = 60.0  # seconds a request is retried before it counts as failed
FINAL = ("confirmed", "credit_hold", "partially_shipped", "shipped", "invoiced", "paid", "closed", "cancelled")


def load_module(name, path):
    """A test-support module by path (tests/ folders are not packages): the e2e fixtures."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


e2e = load_module("e2e_platform", "tests/e2e/conftest.py")
osb = load_module("e2e_osb", "tests/e2e/osb.py")


class Driver:
    """Green threads calling the gateway as an integrator would, until stopped."""

    def __init__(self, platform, org):
        self.platform, self.org = platform, org
        self.requests = self.attempts = 0
        self.failures = []
        self.why_retried = Counter()  # "503", "409", "ConnectionError: refused" (or ": cut") → resends
        self.timeline = []  # (started, ended) of every request
        self.running = True
        self.threads = []

    def send(self, client, method, path, body=None, expect=200, key=None, api=None):
        """One request, sent again (same Idempotency-Key) while the answer is 5xx, none, or 409
        one of RETRYABLE_CONFLICTS; anything else unexpected is a failure (None is returned)."""
        key = key or (str(uuid.uuid4()) if method == "POST" else None)
        headers = dict(client.headers, **({"Idempotency-Key": key} if key else {}))
        self.requests += 1
        started = time.monotonic()
        try:
            return self._send(method, (api or self.platform.api)(path), body, expect, headers, started)
        finally:
            self.timeline.append((started, time.monotonic()))

    def _send(self, method, url, body, expect, headers, started):
        deadline = started + RETRY_FOR
        while True:
            self.attempts += 1
            try:
                answer = requests.request(method, url, json=body, headers=headers, timeout=30)
            except requests.RequestException as exc:
                why = f"{type(exc).__name__}: {'refused' if 'refused' in str(exc).lower() else 'cut'}"
            else:
                why = f"{answer.status_code} {answer.text[:400]}"
                if answer.status_code == expect:
                    return answer.json()
                retry = answer.status_code in RETRYABLE or (
                    answer.status_code == 409 and any(code in answer.text for code in RETRYABLE_CONFLICTS))
                if not retry:
                    self.failures.append(f"{method} {url}: {why}")
                    return None
            if time.monotonic() > deadline:
                self.failures.append(f"{method} {url}: still {why} after {RETRY_FOR:g} s of retries")
                return None
            self.why_retried[why.split(" ", 1)[0] if why[:1].isdigit() else why] += 1
            eventlet.sleep(0.2)

    def spawn(self, *works):
        for work, args in works:
            self.threads.append(eventlet.spawn(work, *args))
        return self

    def stop(self):
        self.running = False
        for thread in self.threads:
            thread.wait()

    @property
    def retries(self):
        return self.attempts - self.requests

    def during(self, began, ended):
        """(requests in flight at some point of [began, ended], the slowest of them in seconds)."""
        spans = [(a, b) for a, b in self.timeline if a <= ended and b >= began]
        return len(spans), max((b - a for a, b in spans), default=0.0)


class OrderLoad(Driver):
    """Sellers placing and confirming one-pump orders for the org's customer through the gateway,
    at most `orders` of them and for at most `seconds`; every third confirmed order is delivered
    and its goods issued (a delivery note and a goods issue through the warehouse)."""

    def __init__(self, platform, org, orders=60, seconds=60.0, sellers=2, pause=0.05, gateways=None):
        super().__init__(platform, org)
        # seller i calls gateway i (of several replicas), else the platform's one
        self.apis = [(lambda path, g=g: g.url("/api/v1/" + path)) for g in gateways or []] or [platform.api]
        self.limit, self.seconds, self.sellers, self.pause = orders, seconds, sellers, pause
        self.keys = []          # every order's Idempotency-Key
        self.placed = {}        # order id -> number, answered 201
        self.confirmed = set()  # order ids answered confirmed
        self.started = self.ended = None
        self.baseline = None

    def start(self):
        self.baseline = {o["id"] for o in self.order_books()}
        self.started = time.monotonic()
        return self.spawn(*[(self.sell, (self.apis[i % len(self.apis)],)) for i in range(self.sellers)])

    def sell(self, api):
        rep, org = self.org.rep, self.org
        while self.running and len(self.keys) < self.limit and time.monotonic() - self.started < self.seconds:
            key = str(uuid.uuid4())
            self.keys.append(key)
            order = self.send(rep, "POST", "orders", org.order_body(1), expect=201, key=key, api=api)
            if order:
                self.placed[order["id"]] = order["number"]
                answer = self.send(rep, "POST", f"orders/{order['id']}/confirm", api=api)
                if answer and answer["status"] == "confirmed":
                    self.confirmed.add(order["id"])
                    if len(self.confirmed) % 3 == 0:
                        self.deliver(order["id"], api)
                elif answer:
                    self.failures.append(f"order {order['number']} ended {answer['status']}")
            eventlet.sleep(self.pause)
        self.ended = time.monotonic()

    def deliver(self, order_id, api):
        delivery = self.send(self.org.rep, "POST", "deliveries", {
            "order_id": order_id, "lines": [{"sku": "PUMP-200", "quantity": 1}]}, expect=201, api=api)
        if delivery:
            self.send(self.org.warehouse, "POST", f"deliveries/{delivery['id']}/issue", api=api)

    def finish(self, after=5.0):
        """End the load `after` seconds from now (or at its count, if that comes first)."""
        self.seconds = time.monotonic() - self.started + after

    def wait(self, timeout=None):
        """Until every seller is done (its count or its time reached)."""
        with eventlet.Timeout(timeout or self.seconds + RETRY_FOR * 2):
            for thread in self.threads:
                thread.wait()
        self.running = False

    @property
    def rate(self):
        took = (self.ended or time.monotonic()) - self.started
        return len(self.keys) / took if took > 0 else 0.0

    def order_books(self):
        with self.platform.rpc(timeout=30) as rpc:
            return [o for o in rpc.order.get_books()["orders"] if o["customer_id"] == self.org.customer["id"]]

    def tally(self):
        """(lost, duplicated, stuck) orders: lost — answered 201 (or confirmed) and not so in the
        order service; duplicated — more orders than the load's keys; stuck — not in a final state."""
        orders = {o["id"]: o for o in self.order_books() if o["id"] not in self.baseline}
        lost = [n for i, n in self.placed.items() if i not in orders]
        lost += [self.placed[i] for i in self.confirmed if i in orders and orders[i]["status"] in ("draft", "cancelled")]
        duplicated = max(0, len(orders) - len(self.keys))
        stuck = [f"{o['number']} ({o['status']})" for o in orders.values() if o["status"] not in FINAL]
        return lost, duplicated, stuck


def settle(platform, load, services, timeout=90.0):
    """Wait until the books are quiet (outboxes drained, no saga running, no order confirming),
    then return (lost, duplicated, stuck, violations, recovery seconds)."""
    from tests.invariants import collect, check

    began = time.monotonic()

    def quiet():
        try:
            with platform.rpc(timeout=30) as rpc:
                books = collect(rpc, services)
        except Exception as exc:  # a service slow to answer after a fault: ask again
            log.warning("books not collected yet: %r", exc)
            return None
        busy = any(part["outbox"]["pending"] for part in books.values()) or any(
            s["state"] in ("running", "compensating") for s in books.get("order", {}).get("sagas", []))
        return None if busy else books

    try:
        books = platform.wait_for(quiet, timeout=timeout, interval=0.5, what="the books settled")
    except AssertionError:
        with platform.rpc(timeout=30) as rpc:
            books = collect(rpc, services)
    recovered = time.monotonic() - began
    lost, duplicated, stuck = load.tally()
    return lost, duplicated, stuck, check(books, strict=True), recovered


def figures(name, load, lost, duplicated, stuck, violations, recovered):
    retried = ", ".join(f"{why} ×{n}" for why, n in load.why_retried.most_common())
    return (f"{name}: {len(load.keys)} orders at {load.rate:.1f}/s ({len(load.confirmed)} confirmed, "
            f"{load.retries} retries{f' ({retried})' if retried else ''}, {len(load.failures)} failed requests); lost {len(lost)}, duplicated "
            f"{duplicated}, stuck {len(stuck)}; invariants {'hold' if not violations else f'{len(violations)} violated'};"
            f" settled {recovered:.1f} s after the load")
