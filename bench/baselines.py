"""The message floor on this machine: an RPC echo over raw pika and over nameko, with 1 and 8
calls in flight, measured as calls/s, p50/p99 and CPU per call (server and client processes
summed). Every platform figure in docs/PERFORMANCE.md is a ratio to these, from the same run.

    python -m bench.baselines [--seconds 10] [--amqp-uri pyamqp://guest:guest@127.0.0.1:5672/]

The pika echo uses a durable request queue and persistent messages, as nameko's RPC does.
Server and client each run in their own process, so their CPU is read from /proc.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlparse

from bench import procstat, stats

ROOT = Path(__file__).resolve().parents[1]
ECHO_QUEUE = "bench.echo"


def pika_parameters(amqp_uri):
    import pika

    url = urlparse(amqp_uri.replace("pyamqp://", "amqp://", 1))
    vhost = url.path[1:] or "/"
    return pika.URLParameters(f"amqp://{url.username}:{url.password}@{url.hostname}:{url.port or 5672}/"
                              f"{quote(vhost, safe='')}")


# -- raw pika -------------------------------------------------------------------------------------
def pika_server(amqp_uri, prefetch):
    import pika

    connection = pika.BlockingConnection(pika_parameters(amqp_uri))
    channel = connection.channel()
    channel.queue_declare(ECHO_QUEUE, durable=True)
    channel.basic_qos(prefetch_count=prefetch)

    def on_request(ch, method, props, body):
        ch.basic_publish("", props.reply_to, body, pika.BasicProperties(
            correlation_id=props.correlation_id, delivery_mode=2, content_type="application/json"))
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(ECHO_QUEUE, on_request)
    print("ready", flush=True)
    channel.start_consuming()


def pika_client(amqp_uri, inflight, seconds):
    import pika

    connection = pika.BlockingConnection(pika_parameters(amqp_uri))
    channel = connection.channel()
    channel.queue_declare(ECHO_QUEUE, durable=True)
    reply_queue = channel.queue_declare("", exclusive=True).method.queue
    sent = {}
    latencies = []
    body = json.dumps({"args": ["hello"], "kwargs": {}}).encode()
    deadline = [None]

    def send():
        cid = uuid.uuid4().hex
        sent[cid] = time.perf_counter()
        channel.basic_publish("", ECHO_QUEUE, body, pika.BasicProperties(
            reply_to=reply_queue, correlation_id=cid, delivery_mode=2, content_type="application/json"))

    def on_reply(ch, method, props, _body):
        started = sent.pop(props.correlation_id, None)
        if started is not None:
            latencies.append(time.perf_counter() - started)
        if time.perf_counter() < deadline[0]:
            send()

    channel.basic_consume(reply_queue, on_reply, auto_ack=True)
    cpu_before = time.process_time()
    begun = time.perf_counter()
    deadline[0] = begun + seconds
    for _ in range(inflight):
        send()
    while sent:
        connection.process_data_events(time_limit=1)
    elapsed = time.perf_counter() - begun
    connection.close()
    return latencies, elapsed, time.process_time() - cpu_before


# -- nameko ---------------------------------------------------------------------------------------
def nameko_client(amqp_uri, inflight, seconds):
    import eventlet

    eventlet.monkey_patch()
    from nameko.exceptions import RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcClient

    latencies = []
    for _ in range(60):  # the server declares its queue when it has started; a call before is lost
        try:
            with ClusterRpcClient(uri=amqp_uri, timeout=1) as client:
                client.bench_echo.echo("warm-up")
            break
        except (RpcTimeout, UnknownService):
            eventlet.sleep(0.5)
    # nameko's standalone client has a single-threaded reply listener: one client per caller
    clients = [ClusterRpcClient(uri=amqp_uri, timeout=30) for _ in range(inflight)]
    proxies = [client.start() for client in clients]
    try:
        for proxy in proxies:
            proxy.bench_echo.echo("warm-up")
        cpu_before = time.process_time()
        begun = time.perf_counter()
        deadline = begun + seconds

        def worker(proxy):
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                proxy.bench_echo.echo("hello")
                latencies.append(time.perf_counter() - started)

        list(eventlet.GreenPool(inflight).imap(worker, proxies))
        elapsed = time.perf_counter() - begun
        return latencies, elapsed, time.process_time() - cpu_before
    finally:
        for client in clients:
            client.stop()


# -- orchestration --------------------------------------------------------------------------------
def _env(amqp_uri):
    return dict(os.environ, AMQP_URI=amqp_uri, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))


def _start_server(kind, amqp_uri, prefetch):
    if kind == "pika":
        command = [sys.executable, "-m", "bench.baselines", "pika-server", "--amqp-uri", amqp_uri,
                   "--prefetch", str(prefetch)]
    else:
        command = [sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "bench" / "echo.yaml"),
                   "bench.echo_service"]
    env = _env(amqp_uri)
    env["ECHO_MAX_WORKERS"] = str(prefetch)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if kind == "pika":
        line = proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"pika echo server did not start: {line}{proc.stdout.read()}")
    return proc


def measure(kind, amqp_uri, inflight, seconds):
    """One row: the server in its own process, the client in another; CPU of both summed."""
    server = _start_server(kind, amqp_uri, prefetch=max(inflight, 1))
    try:
        client = subprocess.run(
            [sys.executable, "-m", "bench.baselines", f"{kind}-client", "--amqp-uri", amqp_uri,
             "--inflight", str(inflight), "--seconds", str(seconds), "--server-pid", str(server.pid)],
            cwd=ROOT, env=_env(amqp_uri), capture_output=True, text=True, timeout=seconds + 120)
        if client.returncode != 0:
            raise RuntimeError(f"{kind} client failed:\n{client.stderr[-3000:]}")
        return json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


def run_client(kind, amqp_uri, inflight, seconds, server_pid):
    server_before = procstat.cpu_seconds(server_pid)
    if kind == "pika":
        latencies, elapsed, client_cpu = pika_client(amqp_uri, inflight, seconds)
    else:
        latencies, elapsed, client_cpu = nameko_client(amqp_uri, inflight, seconds)
    server_cpu = procstat.cpu_seconds(server_pid) - server_before
    row = stats.summary(latencies, elapsed, client_cpu + server_cpu)
    row.update(kind=kind, inflight=inflight)
    print(json.dumps(row))


def run_all(amqp_uri, seconds):
    rows = []
    for kind in ("pika", "nameko"):
        for inflight in (1, 8):
            row = measure(kind, amqp_uri, inflight, seconds)
            rows.append(row)
            print(f"  {kind:<7} in flight {inflight}: {row['per_second']:>8} calls/s  p50 {row['p50_ms']} ms  "
                  f"p99 {row['p99_ms']} ms  CPU {row['cpu_ms_per_call']} ms/call", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("command", nargs="?", default="all",
                        choices=["all", "pika-server", "pika-client", "nameko-client"])
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--prefetch", type=int, default=8)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args(argv)
    if args.command == "pika-server":
        pika_server(args.amqp_uri, args.prefetch)
    elif args.command.endswith("-client"):
        run_client(args.command.split("-")[0], args.amqp_uri, args.inflight, args.seconds, args.server_pid)
    else:
        print(json.dumps(run_all(args.amqp_uri, args.seconds), indent=2))


if __name__ == "__main__":
    main()
