"""The browser half of the console tests: Playwright for Python driving Debian's Chromium, headless.

Playwright's sync API runs its own event loop on greenlets and hangs under eventlet's monkey patching,
which `nameko test` applies to the whole test process; so each step runs here, in a plain Python
process of its own, started by tests/console/conftest.py `browse(step, **arguments)`:

    python -m tests.console.browser <step> '<arguments as JSON>'

It prints one JSON line — what the page showed — and the test asserts on that. Every request the page
makes is recorded (`requests`), and a full-page screenshot of each page visited is written to
`shots` for review.
"""
import json
import sys
from urllib.parse import urlsplit

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
WAIT = 60_000  # ms: the machine is shared and slow; only waits, never a timing assertion


class Console:
    def __init__(self, page, base, shots, prefix):
        self.page, self.base, self.shots, self.prefix = page, base, shots, prefix
        self.requests, self.failures, self.refused, self.errors = [], [], [], []
        page.on("request", lambda r: self.requests.append({"method": r.method, "url": r.url}))
        page.on("requestfailed", lambda r: self.failures.append(r.url))
        page.on("response", lambda r: self.refused.append({"url": r.url, "status": r.status})
                if r.status >= 400 else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", self._console)

    def _console(self, message):
        # an answer >= 400 is logged by the browser too: those are in `refused`, with their address
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def open(self, route, page_name):
        self.page.goto(f"{self.base}/console#/{route}")
        self.settled(page_name)

    def settled(self, page_name):
        expect(self.page.locator(f'main[data-page="{page_name}"]')).to_be_visible(timeout=WAIT)

    def shot(self, name):
        path = f"{self.shots}/{self.prefix}-{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def sign_in(self, username, password):
        self.page.goto(f"{self.base}/console")
        self.settled("login")
        self.shot("sign-in")
        form = self.page.get_by_test_id("login")
        form.locator('input[name="username"]').fill(username)
        form.locator('input[name="password"]').fill(password)
        form.locator('button[type="submit"]').click()
        self.settled("work")

    def texts(self, selector):
        return self.page.locator(selector).all_inner_texts()

    def report(self, **found):
        paths = sorted({urlsplit(r["url"]).path for r in self.requests})
        return dict(found, requests=self.requests, paths=paths, failures=self.failures, refused=self.refused,
                    errors=self.errors)


def chart_figures(page, chart):
    """What the chart draws, read from its ECharts instance: categories and each series' data."""
    box = page.locator(f'[data-chart="{chart}"]')
    expect(box).to_have_attribute("data-ready", "true", timeout=WAIT)
    return page.evaluate("""(chart) => {
        const option = echarts.getInstanceByDom(document.querySelector(`[data-chart="${chart}"]`)).getOption();
        const series = {};
        option.series.forEach((s, i) => { series[s.type + ":" + i] = s.data; });
        return {categories: option.xAxis && option.xAxis.length ? option.xAxis[0].data : null, series,
                names: option.series.map((s) => s.name)};
    }""", chart)


# -- the steps ------------------------------------------------------------------------------------------
def rep_day(console, username, password, customer_id, order_id, other_customer_id, other_order_id):
    """A rep signs in and goes through my work, the customer list, a customer, an order and the
    dashboards; then tries another rep's customer and order by their addresses."""
    page = console.page
    console.sign_in(username, password)
    page.get_by_test_id("due-contact").wait_for(timeout=WAIT)
    work = {section: console.texts(f'[data-testid="{section}"]')
            for section in ("inbox", "due-contact", "visits-to-log", "open-opportunities", "credit-hold")}
    console.shot("my-work")
    console.open("customers", "customers")
    customers = console.texts('[data-testid="customers-table"] tbody tr td:first-child')
    console.shot("customers")
    console.open(f"customers/{customer_id}", "customers")
    customer = page.get_by_test_id("customer").inner_text()
    console.shot("customer")
    console.open(f"orders/{order_id}", "orders")
    order = page.get_by_test_id("order").inner_text()
    events = page.locator("ol.timeline li").evaluate_all("items => items.map(i => i.dataset.type)")
    console.shot("order")
    console.open("dashboards", "dashboards")
    charts = sorted(page.locator("[data-chart]").evaluate_all("boxes => boxes.map(b => b.dataset.chart)"))
    by_rep = chart_figures(page, "by_rep")
    for chart in charts:
        page.locator(f'[data-chart="{chart}"][data-ready="true"], [data-testid="dash-{chart}"] .error').first.wait_for(
            timeout=WAIT)
    console.shot("dashboards")
    console.open(f"customers/{other_customer_id}", "customers")
    other_customer = page.locator("main").inner_text()
    console.open(f"orders/{other_order_id}", "orders")
    other_order = page.locator("main").inner_text()
    console.shot("someone-elses-order")
    return console.report(work=work, customers=customers, customer=customer, order=order, events=events,
                          charts=charts, by_rep=by_rep, other_customer=other_customer, other_order=other_order)


def decide_in_inbox(console, username, password, decisions, language=None):
    """An approver signs in and decides, in their inbox, each listed document of `decisions`
    ([{number, action: approve|reject|release, comment}]) with the comment in place."""
    page = console.page
    console.sign_in(username, password)
    if language:
        page.evaluate("(lang) => localStorage.setItem('console.lang', lang)", language)
        page.reload()
        console.settled("work")
    inbox = page.get_by_test_id("inbox")
    inbox.wait_for(timeout=WAIT)
    listed = console.texts('[data-testid="inbox-table"] tbody tr td:nth-child(2)')
    console.shot("inbox")
    decided = {}
    for decision in decisions:
        if decision["number"] not in listed:
            continue
        row = inbox.locator("tbody tr", has_text=decision["number"])
        row.locator('input[name="comment"]').fill(decision["comment"])
        row.locator(f'button[data-action="{decision["action"]}"]').click()
        done = row.get_by_test_id("decided")
        done.wait_for(timeout=WAIT)
        decided[decision["number"]] = done.get_attribute("data-status")
    if decided:
        console.shot("decided")
    return console.report(listed=listed, decided=decided)


def dashboards(console, username, password, charts):
    """Someone signs in and reads the dashboards: each chart's figures as drawn."""
    console.sign_in(username, password)
    console.open("dashboards", "dashboards")
    offered = sorted(console.page.locator("[data-chart]").evaluate_all("boxes => boxes.map(b => b.dataset.chart)"))
    figures = {chart: chart_figures(console.page, chart) for chart in charts}
    console.shot("dashboards")
    return console.report(offered=offered, figures=figures)


def partial_pages(console, username, password, customer_id, order_id):
    """The customer and order pages while a service is down: the partial-failure marker."""
    page = console.page
    console.sign_in(username, password)
    found = {}
    for route, name in ((f"customers/{customer_id}", "customers"), (f"orders/{order_id}", "orders")):
        console.open(route, name)
        marker = page.get_by_test_id("partial")
        found[name] = marker.inner_text() if marker.count() else None
        found[name + "_page"] = page.locator("main").inner_text()
        console.shot(f"{name}-partial")
    return console.report(**found)


def my_work(console, username, password):
    """Someone signs in: what their work page shows, the partial-failure markers included."""
    console.sign_in(username, password)
    page = console.page
    markers = page.get_by_test_id("partial").all_inner_texts()
    console.shot("my-work")
    return console.report(markers=markers, work=page.get_by_test_id("work").inner_text())


STEPS = {f.__name__: f for f in (rep_day, decide_in_inbox, dashboards, partial_pages, my_work)}


def main(step, arguments):
    arguments = json.loads(arguments)
    base, shots, prefix = arguments.pop("base"), arguments.pop("shots"), arguments.pop("prefix")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN",
                                          timezone_id="Asia/Shanghai")
            page = context.new_page()
            page.set_default_timeout(WAIT)
            console = Console(page, base, shots, prefix)
            try:
                result = STEPS[step](console, **arguments)
            except Exception:
                console.shot("failure")
                raise
        finally:
            browser.close()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main(*sys.argv[1:])
