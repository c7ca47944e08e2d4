"""`python -m tests.invariants [--strict] [--services a,b]`: check the running platform's books.

The broker comes from AMQP_URI (the environment, else the repo's .env that `make up` writes,
else the local default). Exit status 0 when every invariant holds, 1 with the violations listed.
"""
import argparse
import os
import sys
from pathlib import Path

from tests.invariants import SERVICES, collect, check

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_AMQP_URI = "pyamqp://guest:guest@127.0.0.1:5672/"


def amqp_uri():
    if os.environ.get("AMQP_URI"):
        return os.environ["AMQP_URI"]
    env_file = ROOT / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "AMQP_URI" and value.strip():
                return value.strip().strip("'\"")
    return DEFAULT_AMQP_URI


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.invariants", description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="also fail on any parked message")
    parser.add_argument("--services", default=",".join(SERVICES), help="comma-separated (default: all five)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each service's answer")
    args = parser.parse_args(argv)
    services = [s for s in args.services.split(",") if s]
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        parser.error(f"--services: unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")

    from nameko.standalone.rpc import ClusterRpcClient

    with ClusterRpcClient(uri=amqp_uri(), timeout=args.timeout) as rpc:
        books = collect(rpc, services)
    violations = check(books, strict=args.strict)
    missing = [s for s in services if s not in books]
    print(f"books of {', '.join(books) or 'no service'}" + (f" (not answering: {', '.join(missing)})" if missing else ""))
    for violation in violations:
        print(f"VIOLATION {violation}")
    print(f"{len(violations)} violation(s)")
    return 1 if violations or missing else 0


if __name__ == "__main__":
    import eventlet

    eventlet.monkey_patch()
    sys.exit(main())
