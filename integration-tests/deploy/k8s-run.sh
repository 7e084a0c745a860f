#!/usr/bin/env bash
# Runs deploy/k8s/cluster's processes on this machine as its manifests
# configure them (k8s_run.py) and syncs through it: the layout rendered
# through a test overlay (k8s-local/: plain-HTTP hosts under sync.test for
# the Ingress and the nodes' URLs, and the test FxA key), the operator's
# Secret made here with a database per service (the tokenserver and node-0
# on PostgreSQL, node-1 on MariaDB, over their Unix sockets). Root.
#
#   integration-tests/deploy/k8s-run.sh [BINARY_DIR]   (default: target/debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
. integration-tests/deploy/lib.sh
bin_dir="${1:-target/debug}"
here=integration-tests/deploy
pg_socket=${K8S_PG_SOCKET:-/var/run/postgresql}
my_socket=${K8S_MYSQL_SOCKET:-/run/mysqld/mysqld.sock}
tag=synck8s_$$
work="$(mktemp -d)"
chmod 0755 "$work"

cleanup() {
    set +e
    psql -q -h "$pg_socket" -U postgres -d test -c "DROP DATABASE IF EXISTS ${tag}_ts WITH (FORCE)"
    psql -q -h "$pg_socket" -U postgres -d test -c "DROP DATABASE IF EXISTS ${tag}_n0 WITH (FORCE)"
    mysql -uroot --socket="$my_socket" -e "DROP DATABASE IF EXISTS ${tag}_n1; DROP USER IF EXISTS '${tag}'@'localhost'"
    rm -f "$here/k8s-local/fxa-jwk.json"
    rm -rf "$work"
}
trap cleanup EXIT

psql -q -h "$pg_socket" -U postgres -d test -c "CREATE DATABASE ${tag}_ts"
psql -q -h "$pg_socket" -U postgres -d test -c "CREATE DATABASE ${tag}_n0"
password="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
mysql -uroot --socket="$my_socket" -e "CREATE DATABASE ${tag}_n1;
    CREATE USER '${tag}'@'localhost' IDENTIFIED BY '$password';
    GRANT ALL ON ${tag}_n1.* TO '${tag}'@'localhost'"

test_fxa_jwk >"$here/k8s-local/fxa-jwk.json"
kubectl kustomize "$here/k8s-local" >"$work/cluster.yaml"
# The Secret docs/kubernetes.md has the operator create.
TAG="$tag" PASSWORD="$password" PG="$pg_socket" MY="$my_socket" python3 - >"$work/secrets.json" <<'PY'
import json, os, secrets
tag, pg, my = os.environ["TAG"], os.environ["PG"], os.environ["MY"]
print(json.dumps({"sync-secrets": {
    "master-secret": secrets.token_hex(32),
    "previous-master-secrets": "[]",
    "tokenserver-database-url": f"postgres://postgres@localhost/{tag}_ts?host={pg}",
    "node-0-database-url": f"postgres://postgres@localhost/{tag}_n0?host={pg}",
    "node-1-database-url": f"mysql://{tag}:{os.environ['PASSWORD']}@localhost/{tag}_n1?socket={my}",
}}))
PY
python3 "$here/k8s_run.py" "$work/cluster.yaml" "$work/secrets.json" "$bin_dir"
