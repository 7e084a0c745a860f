#!/usr/bin/env bash
# Renders every Kubernetes layout (deploy/k8s/*) with kustomize and checks
# every object offline: the Kubernetes schemas (PyPI kubernetes-validate,
# strict: unknown fields fail), the Prometheus Operator's for the
# ServiceMonitor (npm @kubernetes-models/prometheus-operator), and
# k8s_check.py for what no schema sees.
#
#   integration-tests/deploy/k8s.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
here=integration-tests/deploy
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The keys docs/kubernetes.md tells the operator to put in each Secret.
declare -A secret_keys=(
    [single]="syncserver=master-secret"
    [cluster]="sync-secrets=master-secret,previous-master-secrets,tokenserver-database-url,node-0-database-url,node-1-database-url"
)

(cd "$work" && npm install --silent --no-audit --no-fund @kubernetes-models/prometheus-operator@6.0.0 >/dev/null)
for dir in deploy/k8s/*/; do
    layout="$(basename "$dir")"
    [ -f "$dir/kustomization.yaml" ] || continue
    rendered="$work/$layout.yaml"
    kubectl kustomize "$dir" >"$rendered"
    echo "== $layout: $(grep -c '^kind:' "$rendered") objects"
    kubernetes-validate --strict --quiet "$rendered" 2>&1 | tee "$work/$layout.validate"
    # Any failure, and any object without a schema but the ones checked below.
    if grep -v "Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1" \
        "$work/$layout.validate" | grep -q .; then
        echo "FAIL: $layout does not validate against the Kubernetes schemas" >&2
        exit 1
    fi
    NODE_PATH="$work/node_modules" node "$here/crd_check.mjs" "$rendered" "$work/node_modules"
    python3 "$here/k8s_check.py" "$rendered" "${secret_keys[$layout]}"
done
