"""The platform's figures, through the gateway over HTTP as an integrator drives it: customers with
credit and products with stock prepared first; then clients placing and confirming orders of three
lines for a fixed time at a given concurrency; the customer overview and the order timeline read
at concurrency 8; then every order checked against the databases (confirmed, its stock and credit
reserved exactly once, the totals adding up)."""
import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal

import requests

from bench import procstat, stats

SKUS = ("BENCH-A", "BENCH-B", "BENCH-C")
PRICE = Decimal("10.00")
STOCK = 10_000_000
CREDIT_LIMIT = "900000000.00"


class Http:
    """One credential's HTTP client: a keep-alive session per thread, an Idempotency-Key per POST."""

    def __init__(self, platform, token):
        self.platform = platform
        self.headers = {"Authorization": f"Bearer {token}"}
        self._local = threading.local()

    @property
    def session(self):
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def call(self, method, path, body=None, expect=None):
        headers = dict(self.headers)
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        answer = self.session.request(method, self.platform.api(path), json=body, headers=headers, timeout=60)
        if expect is not None and answer.status_code != expect:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def get(self, path, expect=200):
        return self.call("GET", path, expect=expect)

    def post(self, path, body=None, expect=201):
        return self.call("POST", path, {} if body is None else body, expect=expect)


def login(platform, username, password):
    answer = requests.post(platform.api("auth/token"), json={"username": username, "password": password}, timeout=30)
    answer.raise_for_status()
    return Http(platform, answer.json()["access_token"])


def wait_for(predicate, timeout=120, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
        except RuntimeError as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not met within {timeout}s (last: {last})")
        time.sleep(0.2)


class Org:
    """The bench's sales org: a director, a manager and a rep owning every customer; three
    products with ample stock; `customers` reviewed customers with ample credit."""

    def __init__(self, platform, customers):
        from bench.platform import ADMIN

        self.platform = platform
        admin = self.admin = login(platform, ADMIN, platform.admin_password)
        users = {}

        def user(name, role, **fields):
            password = f"pw-{name}-{uuid.uuid4().hex[:8]}"
            body = dict(username=name, password=password, role=role, display_name=name.title(), **fields)
            made = wait_for(lambda: admin.post("users", body), what=f"user {name}")  # 503 until the admin's staff
            users[name] = made
            return login(platform, name, password), made

        _, head = user("head", "sales_director", region="East China")
        _, manager = user("manager", "sales_manager", manager=head["staff_id"], team="east-1", region="East China")
        self.rep, self.rep_user = user("rep", "sales_rep", manager=manager["staff_id"], team="east-1",
                                       region="East China")
        self.manager_user = manager
        self.pm, _ = user("product-mgr", "product_manager", region="East China")
        self.finance, _ = user("finance", "finance")
        self.warehouse, _ = user("warehouse", "warehouse")
        for sku in SKUS:
            admin.post("products", {"sku": sku, "name": f"Bench {sku}", "unit": "pc", "list_price": str(PRICE),
                                    "floor_price": "9.00", "vat_rate": "0.13", "warranty_months": 12})
        self.warehouse.post("stock/receipts", {"warehouse": "MAIN", "reason": "bench opening stock",
                                               "lines": [{"sku": sku, "quantity": STOCK} for sku in SKUS]})
        self.customers = []
        for number in range(customers):
            customer = self.rep.post("customers", {"name": f"Bench Customer {number:03d} {uuid.uuid4().hex[:6]}",
                                                   "industry": "machinery", "size": "medium",
                                                   "region": "East China", "source": "trade_fair"})
            review = self.rep.post(f"customers/{customer['id']}/reviews", {
                "business_status": "operating", "credit_opinion": "sound",
                "valid_until": str(date.today() + timedelta(days=180))})
            self.pm.post(f"customers/{customer['id']}/reviews/{review['id']}/approve", expect=200)
            self.customers.append(customer["id"])
        for customer_id in self.customers:
            wait_for(lambda: self.finance.call("PUT", f"customers/{customer_id}/credit",
                                               {"limit": CREDIT_LIMIT, "reason": "bench"}, expect=200),
                     what="credit account opened")
            # the order service knows the customer and the prices once this order is placed
            wait_for(lambda: self.place(customer_id), what="first order placed and confirmed")

    def place(self, customer_id, quantities=(1, 2, 3)):
        """Place an order of three lines and confirm it: the order id (raises on any other answer)."""
        order = self.rep.post("orders", {"customer_id": customer_id, "lines": [
            {"sku": sku, "quantity": quantity} for sku, quantity in zip(SKUS, quantities)]})
        confirmed = self.rep.post(f"orders/{order['id']}/confirm", expect=200)
        if confirmed["status"] != "confirmed":
            raise RuntimeError(f"order {order['id']} is {confirmed['status']}, not confirmed")
        return order["id"]


def drain(platform, timeout=120):
    """Wait until every outbox is published and no message waits in a queue: the work a request
    started in the background is done (so its CPU is counted)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        pending = 0
        for name in ("customer", "order", "inventory", "billing", "aftersales"):
            with platform.db(name).cursor() as cur:
                cur.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
                pending += cur.fetchone()["n"]
        pending += platform.queued_messages()
        quiet = quiet + 1 if pending == 0 else 0
        if quiet >= 3:
            return True
        time.sleep(0.5)
    return False


def run_for(seconds, concurrency, one_call):
    """`concurrency` threads calling `one_call(worker_index)` until the time is up: (latencies, errors,
    elapsed, results). A call that raises counts as an error, not a latency."""
    latencies, errors, results = [], [], []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(index):
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                result = one_call(index)
            except Exception as exc:  # noqa: BLE001 — every failure is counted and reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                continue
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                results.append(result)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    begun = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - begun, results


def measured(platform, seconds, concurrency, one_call):
    """One row: throughput, latency and errors of `one_call` at `concurrency`, and the CPU of every
    platform process (from /proc) from the start until its background work is drained, per call."""
    pids = platform.pids()
    before = {name: procstat.cpu_seconds(pid) for name, pid in pids.items()}
    latencies, errors, elapsed, results = run_for(seconds, concurrency, one_call)
    drained = drain(platform)
    spent = {name: procstat.cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    row = stats.summary(latencies, elapsed, sum(spent.values()), errors=len(errors))
    row.update(concurrency=concurrency, drained=drained, error_samples=sorted(set(errors))[:5],
               cpu_ms_per_call_by_process={name: round(cpu * 1000 / len(latencies), 2) if latencies else None
                                           for name, cpu in spent.items()})
    return row, results


def orders(platform, org, seconds, concurrency):
    """Orders placed and confirmed by `concurrency` clients, each with its own customer."""
    def one(index):
        return org.place(org.customers[index % len(org.customers)])
    return measured(platform, seconds, concurrency, one)


def reads(platform, org, seconds, concurrency, order_ids, profile=None):
    """The customer overview (every service asked) and the order timeline at `concurrency`.
    `profile(name)`, when given, starts the profilers for that read and returns them to wait for."""
    calls = {"overview": lambda i: org.rep.get(f"customers/{org.customers[i % len(org.customers)]}/overview"),
             "timeline": lambda i: org.rep.get(f"orders/{order_ids[i % len(order_ids)]}/timeline")}
    rows = {}
    for name, one_call in calls.items():
        profiling = profile(name) if profile else []
        rows[name], _ = measured(platform, seconds, concurrency, one_call)
        for spy in profiling:
            spy.wait(60)
    return rows


def check(platform, org):
    """Every order in the order service is confirmed, and has exactly one active stock reservation
    with its lines and one active credit reservation of its total; stock reserved and each customer's
    exposure equal what the orders add up to; no event was parked as failed. Returns a list of
    problems (empty when all holds) and the number of orders checked."""
    problems = []

    def rows(db, query, *args):
        with platform.db(db).cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall()

    orders = {str(r["id"]): r for r in rows("order", "SELECT id, status, total, customer_id FROM orders")}
    lines = {}
    for r in rows("order", "SELECT order_id, sku, quantity FROM order_lines"):
        lines.setdefault(str(r["order_id"]), {})[r["sku"]] = lines.get(str(r["order_id"]), {}).get(r["sku"], 0) + r[
            "quantity"]
    for order_id, order in orders.items():
        if order["status"] != "confirmed":
            problems.append(f"order {order_id} is {order['status']}")
    stock = {}
    for r in rows("inventory", "SELECT r.order_id, count(DISTINCT r.id) AS n, l.sku, sum(l.quantity) AS q "
                               "FROM reservations r JOIN reservation_lines l ON l.reservation_id = r.id "
                               "WHERE r.status IN ('held', 'committed') GROUP BY r.order_id, l.sku"):
        stock.setdefault(str(r["order_id"]), {})[r["sku"]] = (r["n"], r["q"])
    credit = {str(r["order_id"]): r for r in rows(
        "billing", "SELECT order_id, count(*) AS n, sum(amount) AS amount FROM credit_reservations "
                   "WHERE status = 'reserved' GROUP BY order_id")}
    for order_id, order in orders.items():
        held = stock.get(order_id, {})
        wanted = lines.get(order_id, {})
        if {sku: q for sku, (_, q) in held.items()} != wanted or any(n != 1 for n, _ in held.values()):
            problems.append(f"order {order_id}: stock reserved {held}, ordered {wanted}")
        got = credit.get(order_id)
        if got is None or got["n"] != 1 or got["amount"] != order["total"]:
            problems.append(f"order {order_id}: credit reserved {got and dict(got)}, total {order['total']}")
    for order_id in set(stock) - set(orders):
        problems.append(f"stock reserved for an order the order service does not have: {order_id}")
    for order_id in set(credit) - set(orders):
        problems.append(f"credit reserved for an order the order service does not have: {order_id}")
    ordered = {}
    for wanted in lines.values():
        for sku, quantity in wanted.items():
            ordered[sku] = ordered.get(sku, 0) + quantity
    levels = {r["sku"]: r["reserved"] for r in rows("inventory", "SELECT sku, sum(reserved) AS reserved "
                                                                  "FROM stock_levels GROUP BY sku")}
    for sku in SKUS:
        if levels.get(sku, 0) != ordered.get(sku, 0):
            problems.append(f"{sku}: {levels.get(sku, 0)} reserved in stock, {ordered.get(sku, 0)} ordered")
    totals = {}
    for order in orders.values():
        totals[str(order["customer_id"])] = totals.get(str(order["customer_id"]), Decimal(0)) + order["total"]
    for customer_id in org.customers:
        exposure = Decimal(org.finance.get(f"customers/{customer_id}/credit")["exposure"])
        if exposure != totals.get(customer_id, Decimal(0)):
            problems.append(f"customer {customer_id}: exposure {exposure}, orders total {totals.get(customer_id)}")
    for name in ("customer", "order", "inventory", "billing", "aftersales"):
        [parked] = rows(name, "SELECT count(*) AS n FROM failed_messages WHERE resolved_at IS NULL")
        if parked["n"]:
            problems.append(f"{name}: {parked['n']} events parked as failed")
    return problems, len(orders)
