"""Issue 12: the sales console is served by the gateway under /console — its own files and the pinned
charting library (gateway/console/vendor.json), with no CDN and nothing outside its folders."""
import json
import re

import pytest

from gateway import console


def test_console_page_loads_every_asset_from_the_gateway(gateway):
    page = gateway.get("console")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', page.text) if not a.startswith("data:")]
    assert "/console/vendor/echarts.min.js" in assets
    assert assets and all(a.startswith("/console/") for a in assets), assets  # no CDN
    for asset in assets:
        answer = gateway.get(asset.lstrip("/"))
        assert answer.status_code == 200, asset
        assert answer.content
    assert gateway.get("console/app.js").headers["Content-Type"].startswith("text/javascript")
    # the modules the app imports are served too, and they reach only the API
    app = gateway.get("console/app.js").text
    for module in re.findall(r'from "\./([\w.-]+)"', app):
        assert gateway.get(f"console/{module}").status_code == 200, module
    for name in ("app.js", "api.js"):
        source = gateway.get(f"console/{name}").text
        assert not re.search(r"https?://", source), f"{name} names an outside address"


@pytest.mark.parametrize("path", ["console/../config.yaml", "console/%2e%2e%2fconfig.yaml", "console/vendor.json",
                                  "console/fetch_vendor.py", "console/vendor/.fetched.json", "console/nothing.js",
                                  "console/vendor/..%2fvendor.json"])
def test_console_serves_nothing_outside_its_folders(gateway, path):
    assert gateway.get(path).status_code == 404


def test_console_asset_lookup_refuses_names_that_leave_the_folder():
    assert console.asset("static", "index.html") is not None
    for name in ("../vendor.json", ".hidden", "", "a/b.js", "..\\x"):
        assert console.asset("static", name) is None
    assert console.asset("elsewhere", "index.html") is None


def test_the_charting_library_served_is_the_pinned_one_with_its_licence(gateway):
    """vendor.json pins ECharts by version and the registry's sha512; fetch_vendor.py refuses any other
    tarball and records what it unpacked — the same pin — and the licence is served beside it."""
    pins = json.loads((console.ROOT / "vendor.json").read_text())["packages"]
    fetched = json.loads((console.FOLDERS["vendor"] / ".fetched.json").read_text())
    assert fetched == {p["name"]: p["integrity"] for p in pins}
    [echarts] = [p for p in pins if p["name"] == "echarts"]
    assert echarts["license"] == "Apache-2.0" and echarts["integrity"].startswith("sha512-")
    script = gateway.get("console/vendor/echarts.min.js")
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert "Apache License" in gateway.get("console/vendor/echarts.LICENSE.txt").text
