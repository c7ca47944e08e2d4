"""Fetch the console's third-party browser files (vendor.json) into vendor/: `npm pack` takes each
package's tarball from the npm registry (or npm's cache, so it works offline once fetched), its
sha512 is checked against the integrity pinned in vendor.json, and only the listed files are
unpacked. Nothing here is in git; `make venv` runs this, and the gateway serves vendor/ under
/console/vendor/.

    python gateway/console/fetch_vendor.py          # fetch what is missing or of another version
"""
import base64
import hashlib
import json
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
VENDOR = HERE / "vendor"
STAMP = VENDOR / ".fetched.json"


def integrity(path):
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def fetch(package, workdir):
    spec = f"{package['name']}@{package['version']}"
    if shutil.which("npm") is None:
        raise SystemExit(f"npm is needed once to fetch {spec} for the console (Debian: apt-get install npm)")
    answer = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(workdir)],
                            check=True, capture_output=True, text=True)
    tarball = workdir / json.loads(answer.stdout)[0]["filename"]
    found = integrity(tarball)
    if found != package["integrity"]:
        raise SystemExit(f"{spec}: the tarball's integrity {found} is not the pinned {package['integrity']}")
    with tarfile.open(tarball) as archive:
        for member, target in package["files"].items():
            data = archive.extractfile(member).read()
            (VENDOR / target).write_bytes(data)
    print(f"console vendor: {spec} ({package['license']}) -> {', '.join(package['files'].values())}")


def main():
    pins = json.loads((HERE / "vendor.json").read_text())["packages"]
    wanted = {p["name"]: p["integrity"] for p in pins}
    have = json.loads(STAMP.read_text()) if STAMP.exists() else {}
    missing = [p for p in pins if have.get(p["name"]) != p["integrity"]
               or not all((VENDOR / t).exists() for t in p["files"].values())]
    VENDOR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="console-vendor-") as workdir:
        for package in missing:
            fetch(package, pathlib.Path(workdir))
    STAMP.write_text(json.dumps(wanted, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
