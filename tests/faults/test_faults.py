"""Fault runs under a steady order load through the gateway (issue 9): each run places and
confirms orders (tests/faults/load.py: Idempotency-Keys, client retries, bounded in count and
time, loopback only), injects its fault mid-load, waits for the books to settle and ends with the
invariant checker (tests/invariants, strict: nothing parked either) and the count of lost,
duplicated and stuck orders — all must be 0. Its figures line goes to docs/RELIABILITY.md.

Fast, in `make test`: one SIGKILL (the order service, the saga's orchestrator) and every event
delivered twice (the outboxes replayed). The rest (`fault_suite`) in `make test-faults`.
"""
import signal
import time

import eventlet
import psycopg2
import pytest

from shared.testing.plugin import pg_settings
from tests.faults.load import OrderLoad, e2e, figures, osb, settle

pytestmark = pytest.mark.slow
start_platform = e2e.start_platform
CORE = ("customer", "order", "inventory", "billing")
ALL = CORE + ("aftersales",)
# a shorter saga lease than production's 60 s, so a saga orphaned by a kill is recovered within the run
FAST_RECOVERY = {"order": {"ORDER_SAGA_LEASE_SECONDS": "15"}}


def platform_with_org(start_platform, services=CORE, env=None, stock=100000):
    platform = start_platform(*services, env=dict(FAST_RECOVERY, **(env or {})))
    return platform, osb.Org(platform, stock=stock, limit="100000000.00")


def run_to_the_end(platform, load, services, name, capsys):
    load.wait()
    lost, duplicated, stuck, violations, settled = settle(platform, load, services)
    with capsys.disabled():
        print("\n" + figures(name, load, lost, duplicated, stuck, violations, settled))
    assert load.confirmed, "the load confirmed nothing"
    assert not load.failures, load.failures
    assert (lost, duplicated, stuck) == ([], 0, []), (lost, duplicated, stuck)
    assert not violations, "\n".join(map(str, violations))
    return settled


def restart(proc, how):
    """Stop a process (SIGKILL: a crash; SIGTERM: graceful) and start it again; the seconds from
    the signal to ready."""
    began = time.monotonic()
    if how == signal.SIGKILL:
        proc.kill()
    else:
        proc.stop(timeout=40)
        assert proc.proc.returncode == 0, f"{proc.name} did not stop cleanly on SIGTERM:\n{proc.logs()}"
    proc.start().wait_ready(timeout=90)
    return time.monotonic() - began


def wait_for_orders(load, count):
    while len(load.keys) < count and any(not t.dead for t in load.threads):
        eventlet.sleep(0.1)


# -- fast: make test ------------------------------------------------------------------------------------------
def test_sigkill_of_the_order_service_mid_load_loses_duplicates_and_strands_no_order(start_platform, capsys):
    """FR-61/FR-63/FR-65: SIGKILL of the order service while orders are being confirmed; it is
    restarted; the retried requests and the saga recovery job finish every order."""
    platform, org = platform_with_org(start_platform)
    load = OrderLoad(platform, org, orders=30, seconds=60).start()
    wait_for_orders(load, 10)
    took = restart(platform.procs["order"], signal.SIGKILL)
    run_to_the_end(platform, load, CORE, f"SIGKILL order (back in {took:.1f} s)", capsys)


def replay_outboxes(platform, services):
    """Every event published again: each service's outbox rows marked unpublished, so its relay
    sends them all a second time (what a relay that crashed after publishing and before marking
    does, for every row at once)."""
    settings = pg_settings()
    replayed = 0
    for name in services:
        conn = psycopg2.connect(host=settings["host"], port=settings["port"], user=settings["user"],
                                password=settings["password"], dbname=platform.procs[name].env["DB_NAME"])
        try:
            with conn, conn.cursor() as cur:
                cur.execute("UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL")
                replayed += cur.rowcount
        finally:
            conn.close()
    return replayed


def test_every_event_delivered_twice_changes_nothing(start_platform, capsys):
    """DESIGN §3 (idempotent consumers): mid-load and again at the end, every event any service
    ever published is delivered once more; the inboxes drop them and the books stay exact."""
    platform, org = platform_with_org(start_platform)
    load = OrderLoad(platform, org, orders=30, seconds=60).start()
    wait_for_orders(load, 12)
    replayed = replay_outboxes(platform, CORE)
    load.wait()
    replayed += replay_outboxes(platform, CORE)
    assert replayed > 0
    run_to_the_end(platform, load, CORE, f"every event twice ({replayed} replayed)", capsys)
    duplicates = sum(float(line.rsplit(" ", 1)[1]) for name in CORE for line in platform.metrics(name).splitlines()
                     if line.startswith("sales_duplicate_messages_total{"))
    assert duplicates > 0, "no consumer saw a duplicate"


def test_a_message_parked_in_the_gateway_raises_its_alert(start_platform):
    """No message parked without an alert, in a process without an outbox relay too: the gateway
    parks a staff.updated it cannot read, and its sales_failed_messages_unresolved (what the
    SalesFailedMessages alert reads) says so."""
    platform = start_platform()
    platform.publish("customer", "staff.updated", {"staff_id": "not-a-uuid", "role": "sales_rep"})

    def parked():
        lines = [line for line in platform.metrics("gateway").splitlines()
                 if line.startswith('sales_failed_messages_unresolved{service="gateway"}')]
        return lines and float(lines[0].rsplit(" ", 1)[1]) >= 1

    platform.wait_for(parked, timeout=30, what="the gateway's parked-message gauge at 1")
