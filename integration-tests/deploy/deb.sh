#!/usr/bin/env bash
# Builds the Debian package from binaries built already, installs it on
# this machine, starts the installed binary exactly as the installed
# systemd unit says (its user, environment, environment file, state
# directory and open-files limit; there is no systemd here), syncs through
# it with the end-to-end test, then purges the package. Root.
#
#   integration-tests/deploy/deb.sh [BINARY_DIR]   (default: target/debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
. integration-tests/deploy/lib.sh
bin_dir="${1:-target/debug}"
package=firefox-sync-server
unit=/usr/lib/systemd/system/syncserver.service
work="$(mktemp -d)"
pid=""
defaults_saved=""

fail() { echo "FAIL: $*" >&2; [ -f "$work/server.log" ] && tail -n 30 "$work/server.log" >&2; exit 1; }

# Never touch an installation that is not this test's own.
if dpkg -s "$package" >/dev/null 2>&1 || [ -e /var/lib/syncserver ]; then
    rm -rf "$work"
    fail "$package or /var/lib/syncserver is here already; this test installs and purges its own"
fi
made_user=""
getent passwd syncserver >/dev/null || made_user=yes
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    dpkg --purge "$package" >/dev/null 2>&1 || true
    rm -rf /var/lib/syncserver "$work"
    [ -z "$made_user" ] || deluser --system syncserver >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== build and install"
deb="$(deploy/debian/build-deb.sh "$bin_dir" "$work")"
dpkg -i "$deb" >/dev/null
for b in syncserver syncstorage tokenserver; do
    [ -x "/usr/bin/$b" ] || fail "no /usr/bin/$b"
done
[ -f "$unit" ] || fail "no unit at $unit"
[ -f "/usr/share/doc/$package/README.md" ] || fail "no docs"
getent passwd syncserver >/dev/null || fail "no syncserver user"
[ "$(getent passwd syncserver | cut -d: -f7)" != /bin/bash ] || fail "the service user has a login shell"
dpkg-query -W -f '${Conffiles}\n' "$package" | grep -q /etc/default/syncserver ||
    fail "/etc/default/syncserver is not a conffile"
echo "installed $(basename "$deb"): $(dpkg-query -W -f '${Installed-Size}' "$package") KiB"

echo "== the unit, as systemd would run it"
unit_value() { sed -n "s/^$1=//p" "$unit"; }
user="$(unit_value User)"
state="/var/lib/$(unit_value StateDirectory)"
nofile="$(unit_value LimitNOFILE)"
env_file="$(unit_value EnvironmentFile | sed 's/^-//')"
read -r -a exec_start <<<"$(unit_value ExecStart)"
mapfile -t unit_env < <(unit_value Environment)
[ "$user" = syncserver ] && [ "$nofile" -ge 65536 ] || fail "unit: User=$user LimitNOFILE=$nofile"
# This machine's hard limit may be lower than the unit's, and cannot be
# raised in its container: the lower one.
hard="$(ulimit -Hn)"
if [ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ]; then
    echo "LimitNOFILE=$nofile capped by this machine's hard limit of $hard"
    nofile="$hard"
fi
# What an administrator adds to the environment file: a port, the URL
# clients use, and (for the test) the FxA key the tokens are signed with.
port="$(free_port)"
jwk="$(test_fxa_jwk)"
cat >>"$env_file" <<SETTINGS
SYNC_PORT=$port
SYNC_PUBLIC_URL=http://127.0.0.1:$port
SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK='$jwk'
SETTINGS
# systemd's StateDirectory=: created, owned by the user.
install -d -o "$user" -g "$(id -gn "$user")" -m "$(unit_value StateDirectoryMode)" "$state"
mapfile -t file_env < <(grep -E '^[A-Z_]+=' "$env_file" | sed "s/='\(.*\)'$/=\1/")
prlimit --nofile="$nofile" -- \
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
    env -i -C "$state" "${unit_env[@]}" "${file_env[@]}" "${exec_start[@]}" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/__heartbeat__" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || fail "the server exited"
    sleep 0.1
done
setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
    env -i "${file_env[@]}" /usr/bin/syncserver healthcheck >/dev/null || fail "healthcheck failed"
[ "$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")" = "$nofile" ] || fail "open-files limit not applied"
[ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" = "$(id -u "$user")" ] || fail "not running as $user"

echo "== the end-to-end test through the installed binary"
SYNC_E2E_SERVER="http://127.0.0.1:$port" cargo test --quiet -p syncserver --test e2e \
    firefox_syncs_through_the_all_in_one_server
# The test's user (it started with none) is in the server's own database:
# the test went through it.
users="$(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
    env -i "${unit_env[@]}" "${file_env[@]}" /usr/bin/syncserver user count)"
[ "$users" -ge 1 ] || fail "the server holds $users users after the end-to-end test"
echo "the server holds $users users"
for file in master_secret syncstorage.db tokenserver.db; do
    [ "$(stat -c %U "$state/$file")" = "$user" ] || fail "$state/$file is not $user's"
done
kill -TERM "$pid"
wait "$pid" || fail "exited with an error after SIGTERM"
pid=""

echo "== purge"
dpkg --purge "$package" >/dev/null 2>&1
[ ! -e /usr/bin/syncserver ] && [ ! -e "$unit" ] && [ ! -e "$env_file" ] || fail "purge left files behind"
[ -f "$state/master_secret" ] || fail "purge deleted the users' data"
echo "deb test passed"
