#!/usr/bin/env bash
# The operator's drill with every service on its own network address, as on
# separate hosts: a tokenserver, three storage nodes (SQLite, PostgreSQL,
# MariaDB) and the clients, each in a network namespace of its own, joined
# by veth pairs to one bridge. The clients sync throughout an unassign, a
# migration, a drain and a SIGKILL (integration_tests::drill); the operator's
# commands run in the tokenserver's namespace and reach the nodes over the
# bridge, as they would across a network.
#
# Needs root (ip netns) and PostgreSQL and MariaDB on their Unix sockets
# (namespaces share the file system, not loopback). Everything it creates
# (namespaces, bridge, databases, files) is removed when it exits; the
# services' logs are printed first when it fails. DRILL_NET (three octets,
# 10.77.0) picks the bridge's /24.
#
#     integration-tests/netns-drill.sh [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${1:-9}
net=${DRILL_NET:-10.77.0}
bridge=syncdrill0
pg_socket=${DRILL_PG_SOCKET:-/var/run/postgresql}
my_socket=${DRILL_MYSQL_SOCKET:-/run/mysqld/mysqld.sock}
tag=syncdrill_$$
work=$(mktemp -d)
pids=()

# name and host address of each namespace
declare -A host=([sync-ts]=10 [sync-n0]=11 [sync-n1]=12 [sync-n2]=13 [sync-cl]=20)

# Namespaces and the bridge, also those a killed earlier run left.
remove_network() {
    for ns in "${!host[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
}

cleanup() {
    local status=$?
    set +e
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$status" -ne 0 ]; then
        for log in "$work"/*.log; do
            [ -e "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
        done
    fi
    remove_network
    psql -q -h "$pg_socket" -U postgres -d test -c "DROP DATABASE IF EXISTS ${tag}_n1 WITH (FORCE)"
    mysql -uroot --socket="$my_socket" -e "DROP DATABASE IF EXISTS ${tag}_n2"
    rm -rf "$work"
}
trap cleanup EXIT

echo "== build"
cargo build --workspace --bins
cargo build -p integration-tests --example drill
bin=$PWD/target/debug

echo "== network: bridge $bridge, $net.0/24"
remove_network
ip link add "$bridge" type bridge
ip link set "$bridge" up
for ns in "${!host[@]}"; do
    ip netns add "$ns"
    ip link add "v-$ns" type veth peer name eth0 netns "$ns"
    ip link set "v-$ns" master "$bridge" up
    ip -n "$ns" addr add "$net.${host[$ns]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    echo "$ns: $net.${host[$ns]}"
done

echo "== databases"
psql -q -h "$pg_socket" -U postgres -d test -c "CREATE DATABASE ${tag}_n1"
mysql -uroot --socket="$my_socket" -e "CREATE DATABASE ${tag}_n2"
database=(
    "sqlite:$work/n0.db"
    "postgres://postgres@localhost/${tag}_n1?host=$pg_socket"
    "mysql://root@localhost/${tag}_n2?socket=$my_socket"
)
secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
jwk=$("$bin/examples/drill" jwk)

# The operator's command line, in the tokenserver's namespace with its
# settings; the drill runs it too.
admin=$work/tokenserver
cat >"$admin" <<EOF
#!/bin/sh
exec ip netns exec sync-ts env \\
    SYNC_LOG_LEVEL=warn \\
    SYNC_MASTER_SECRET=$secret \\
    SYNC_HOST=$net.${host[sync-ts]} SYNC_PORT=8000 \\
    SYNC_TOKENSERVER__DATABASE_URL=sqlite:$work/tokenserver.db \\
    SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK='$jwk' \\
    SYNC_TOKENSERVER__NODE_CHECK_INTERVAL_SECONDS=1 \\
    SYNC_TOKENSERVER__NODE_TIMEOUT_SECONDS=1 \\
    SYNC_TOKENSERVER__NODE_CHECK_FAILURES=2 \\
    SYNC_TOKENSERVER__NODE_DOWN_GRACE_SECONDS=2 \\
    "$bin/tokenserver" "\$@"
EOF
chmod +x "$admin"

# Waits until something listens at $1:$2, as seen from the clients.
reachable() {
    for _ in $(seq 100); do
        ip netns exec sync-cl bash -c "</dev/tcp/$1/$2" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens at $1:$2" >&2
    return 1
}

echo "== services"
nodes=()
for i in 0 1 2; do
    address=$net.${host[sync-n$i]}
    ip netns exec "sync-n$i" env \
        SYNC_LOG_LEVEL=warn \
        SYNC_MASTER_SECRET="$secret" \
        SYNC_HOST="$address" SYNC_PORT=8000 SYNC_PUBLIC_URL="http://$address:8000" \
        SYNC_METRICS_ADDRESS="$address:9464" \
        SYNC_SYNCSTORAGE__DATABASE_URL="${database[$i]}" \
        "$bin/syncstorage" >"$work/n$i.log" 2>&1 &
    pids+=($!)
    reachable "$address" 8000
    nodes+=("http://$address:8000,http://$address:9464,$!")
    echo "node $i: http://$address:8000 (${database[$i]%%:*}), pid $!"
done
"$admin" >"$work/tokenserver.log" 2>&1 &
pids+=($!)
reachable "$net.${host[sync-ts]}" 8000
for node in "${nodes[@]}"; do
    "$admin" node add "${node%%,*}" --capacity 1000 >/dev/null
done
"$admin" node list

echo "== drill: $clients clients from $net.${host[sync-cl]}"
ip netns exec sync-cl "$bin/examples/drill" run "http://$net.${host[sync-ts]}:8000" "$admin" "${nodes[@]}" "$clients"
