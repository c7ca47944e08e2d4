#!/bin/sh
# Creates the one Secret of the platform that no operator makes: gateway-secrets, with a random
# token-signing secret and the first admin's password. Run once per namespace, after the
# namespace exists and before the gateway starts; an existing Secret is kept (rotating the token
# secret logs everybody out, and the admin's password only counts on the gateway's first start).
#     sh deploy/k8s/create-secrets.sh [NAMESPACE]        (default: sales)
# The database and RabbitMQ credentials are made by CloudNativePG (<name>-db-app) and by the
# RabbitMQ Cluster Operator (rabbitmq-default-user). Nothing secret is ever written in git.
set -eu
namespace=${1:-sales}

if kubectl --namespace "$namespace" get secret gateway-secrets >/dev/null 2>&1; then
    echo "gateway-secrets already exists in namespace $namespace: kept"
    exit 0
fi

random() { head -c 64 /dev/urandom | base64 | tr -d '/+=\n' | cut -c "1-$1"; }

# Through files in a private folder, so the values never appear on a command line.
folder=$(mktemp -d)
trap 'rm -rf "$folder"' EXIT
umask 077
printf %s "$(random 64)" >"$folder/token-secret"    # no trailing newline in the value
printf %s "$(random 24)" >"$folder/admin-password"
kubectl --namespace "$namespace" create secret generic gateway-secrets \
    --from-file=token-secret="$folder/token-secret" \
    --from-file=admin-password="$folder/admin-password"
kubectl --namespace "$namespace" label secret gateway-secrets app.kubernetes.io/part-of=sales-platform
echo "The first admin is 'admin'; the password:"
echo "    kubectl --namespace $namespace get secret gateway-secrets -o jsonpath='{.data.admin-password}' | base64 -d"
