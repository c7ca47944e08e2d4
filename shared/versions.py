"""What runs where: the kit's version and each service's own (its pyproject.toml), reported in
`/health` and as the `sales_build_info{service, version, kit_version}` metric."""
import functools
import sys
import tomllib
from pathlib import Path

import shared

KIT_VERSION = shared.__version__
UNKNOWN = "unknown"


@functools.lru_cache(maxsize=None)
def service_version(service_cls):
    """`[project].version` of the pyproject.toml beside the service's package
    (services/<name>/pyproject.toml, gateway/pyproject.toml)."""
    module = sys.modules.get(service_cls.__module__)
    path = Path(getattr(module, "__file__", "") or ".").resolve()
    for folder in list(path.parents)[:3]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                return tomllib.loads(candidate.read_text())["project"]["version"]
            except (KeyError, tomllib.TOMLDecodeError):
                return UNKNOWN
    return UNKNOWN
