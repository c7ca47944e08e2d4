"""The sales console (issue 12): a browser app served by the gateway under /console, built only on
the public API (/api/v1) with the signed-in person's own token — so it can show nothing the API would
refuse them. Its files are plain ES modules in gateway/console/static (no build step); the charting
library (ECharts) is fetched by `make venv` into gateway/console/vendor, pinned with its sha512
(gateway/console/vendor.json): served from here, never from a CDN."""
import mimetypes
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "console"
FOLDERS = {"static": ROOT / "static", "vendor": ROOT / "vendor"}
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".json": "application/json", ".txt": "text/plain; charset=utf-8",
         ".svg": "image/svg+xml"}


def asset(folder, name):
    """(bytes, content type) of a file directly in the folder, or None (never outside it, nor a dot file)."""
    base = FOLDERS.get(folder)
    if base is None or not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = base / name
    if not path.is_file():
        return None
    kind = TYPES.get(path.suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return path.read_bytes(), kind
