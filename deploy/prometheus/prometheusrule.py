"""Print the rules of deploy/prometheus/rules as a PrometheusRule for the Prometheus Operator
(kube-prometheus-stack), so Kubernetes runs the same rules as compose and CI test:

    .venv/bin/python deploy/prometheus/prometheusrule.py --namespace sales \\
        --label release=kube-prometheus-stack | kubectl apply -f -

--label adds a label to the PrometheusRule (your Prometheus' ruleSelector decides which it
loads; kube-prometheus-stack selects `release: <its release name>` by default).
"""
import argparse
import sys
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parent / "rules"


def prometheus_rule(namespace, labels, rules_dir=RULES):
    groups = []
    for path in sorted(rules_dir.glob("*.yml")):
        groups += yaml.safe_load(path.read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "sales-platform",
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "sales-platform", **labels},
        },
        "spec": {"groups": groups},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", default="sales")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    labels = dict(item.split("=", 1) for item in args.label)
    yaml.safe_dump(prometheus_rule(args.namespace, labels), sys.stdout, sort_keys=False, width=120)


if __name__ == "__main__":
    main()
