#!/usr/bin/env bash
# Builds the image's runtime stage (deploy/Containerfile) from binaries
# built already, with `podman build --isolation chroot`, then runs it the
# way a container engine would, without one (podman cannot run containers
# on these machines): the image's filesystem exported, the image's user,
# environment, working directory and command, in a chroot. The end-to-end
# test syncs through it; the image's own HEALTHCHECK says when it is up.
# Also checks: the server runs as the non-root user, owns only /data, and
# the image holds CA certificates and no build tools. Root.
#
#   integration-tests/deploy/image.sh [BINARY_DIR]   (default: target/debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
. integration-tests/deploy/lib.sh
bin_dir="${1:-target/debug}"
tag="localhost/firefox-sync-server:test"
base="localhost/debian:bookworm-slim"
work="$(mktemp -d /var/tmp/sync-image.XXXXXX)"
rootfs="$work/rootfs"
pid=""

container=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    umount "$rootfs/proc" 2>/dev/null || true
    umount "$rootfs/dev" 2>/dev/null || true
    [ -n "$container" ] && podman rm -f "$container" >/dev/null 2>&1 || true
    podman rmi -f "$tag" >/dev/null 2>&1 || true
    # Never into a mount left behind (the host's /dev).
    if mountpoint -q "$rootfs/dev" || mountpoint -q "$rootfs/proc"; then
        echo "left $work: $rootfs still has mounts" >&2
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/server.log" ] && tail -n 30 "$work/server.log" >&2; exit 1; }

integration-tests/deploy/base-image.sh "$base"

echo "== podman build (runtime stage, binaries from $bin_dir)"
mkdir -p "$work/context/bin"
for b in syncserver syncstorage tokenserver; do
    # Stripped, as a release build's would be: debug symbols are most of a
    # test build's size.
    strip -o "$work/context/bin/$b" "$bin_dir/$b"
done
podman build --quiet --isolation chroot --format docker \
    --build-arg BINARIES=prebuilt --build-arg RUNTIME_IMAGE="$base" -f deploy/Containerfile -t "$tag" "$work/context" >/dev/null
inspect() { podman image inspect --format "$1" "$tag"; }
user="$(inspect '{{.Config.User}}')"
workdir="$(inspect '{{.Config.WorkingDir}}')"
mapfile -t env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t cmd < <(inspect '{{range .Config.Cmd}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t check < <(inspect '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' | sed '/^$/d')
echo "user $user, workdir $workdir, command ${cmd[*]}, healthcheck ${check[*]}"
[ "${check[0]}" = "CMD" ] || fail "the image has no HEALTHCHECK in exec form"
[ -n "$user" ] && [ "${user%%:*}" != "0" ] && [ "${user%%:*}" != "root" ] || fail "the image runs as root"
for label in title version licenses; do
    [ -n "$(inspect "{{index .Config.Labels \"org.opencontainers.image.$label\"}}")" ] ||
        fail "no org.opencontainers.image.$label label"
done

echo "== the image's filesystem"
container="$(podman create "$tag" 2>/dev/null)"
mkdir "$rootfs"
podman export "$container" | tar --numeric-owner -x -C "$rootfs"
podman rm "$container" >/dev/null 2>&1
container=""
for tool in cc gcc c++ g++ cpp ld as make cargo rustc rustup; do
    for dir in bin usr/bin usr/local/bin sbin usr/sbin; do
        [ ! -e "$rootfs/$dir/$tool" ] || fail "the image holds a build tool: /$dir/$tool"
    done
done
[ -s "$rootfs/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA certificates"
for b in syncserver syncstorage tokenserver; do
    [ -x "$rootfs/usr/local/bin/$b" ] || fail "no /usr/local/bin/$b"
    [ "$(stat -c %u "$rootfs/usr/local/bin/$b")" = 0 ] || fail "/usr/local/bin/$b is not root's"
done
uid="${user%%:*}"
[ "$(stat -c %u "$rootfs/data")" = "$uid" ] || fail "/data is not the server user's"
echo "image: $(du -sh "$rootfs" | cut -f1) unpacked; no build tools; CA certificates; /data owned by $uid"

echo "== the image's command, in a chroot"
mount -t proc proc "$rootfs/proc"
mount --bind /dev "$rootfs/dev"
port="$(free_port)"
jwk="$(test_fxa_jwk)"
# What `podman run -e … -p` would add: the port published, the public URL
# clients use, and the (test) FxA key.
run_env=("${env[@]}" "SYNC_PORT=$port" "SYNC_PUBLIC_URL=http://127.0.0.1:$port"
    "SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK=$jwk")
in_image() {
    exec chroot --userspec="$user" "$rootfs" /usr/bin/env -i -C "$workdir" "${run_env[@]}" "$@"
}
# The subshell becomes the server (exec all the way down): $pid is its pid.
(in_image "${cmd[@]}") >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    (in_image "${check[@]:1}") >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "the server exited"
    sleep 0.1
done
(in_image "${check[@]:1}") || fail "the image's healthcheck never passed"
[ "$(readlink "/proc/$pid/exe")" = "$rootfs/usr/local/bin/syncserver" ] ||
    fail "pid $pid is $(readlink "/proc/$pid/exe"), not the image's server"
running_uid="$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
[ "$running_uid" = "$uid" ] || fail "the server runs as uid $running_uid, not $uid"
echo "serving on 127.0.0.1:$port as uid $running_uid"

echo "== the end-to-end test through it"
SYNC_E2E_SERVER="http://127.0.0.1:$port" cargo test --quiet -p syncserver --test e2e \
    firefox_syncs_through_the_all_in_one_server
# The test's user (it started with none) is in the server's own database:
# the test went through it.
users="$( (in_image /usr/local/bin/syncserver user count) )"
[ "$users" -ge 1 ] || fail "the server holds $users users after the end-to-end test"
echo "the server holds $users users"
[ "$(stat -c '%u %a' "$rootfs/data/master_secret")" = "$uid 600" ] ||
    fail "the generated secret is not the server user's alone"
for db in syncstorage.db tokenserver.db; do
    [ "$(stat -c %u "$rootfs/data/$db")" = "$uid" ] || fail "/data/$db is not the server user's"
done

echo "== SIGTERM (the image's STOPSIGNAL) stops it cleanly"
[ "$(inspect '{{.Config.StopSignal}}')" = "SIGTERM" ] || fail "STOPSIGNAL is not SIGTERM"
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "still running 10 s after SIGTERM"
wait "$pid" || fail "exited with $? after SIGTERM"
pid=""
echo "image test passed"
