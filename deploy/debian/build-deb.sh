#!/usr/bin/env bash
# Builds the Debian package firefox-sync-server: the three binaries in
# /usr/bin, the systemd unit, /etc/default/syncserver (a conffile), the
# example configurations and the docs. Needs dpkg-deb and strip.
#
#   deploy/debian/build-deb.sh [BINARY_DIR] [OUT_DIR]
#       BINARY_DIR: default target/release (cargo build --release --workspace --bins)
#       OUT_DIR: default target/debian
set -euo pipefail
cd "$(dirname "$0")/../.."
bin_dir="${1:-target/release}"
out_dir="${2:-target/debian}"
package=firefox-sync-server
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
arch="$(dpkg --print-architecture)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/etc/default" \
    "$root/usr/share/doc/$package/examples" "$root/usr/share/doc/$package/docs/adr"
for b in syncserver syncstorage tokenserver; do
    strip --strip-unneeded -o "$root/usr/bin/$b" "$bin_dir/$b"
    chmod 0755 "$root/usr/bin/$b"
done
sed 's|/usr/local/bin/|/usr/bin/|g' deploy/syncserver.service >"$root/usr/lib/systemd/system/syncserver.service"
install -m 0644 deploy/syncserver.env "$root/etc/default/syncserver"
install -m 0644 deploy/*.example.toml "$root/usr/share/doc/$package/examples/"
install -m 0644 README.md "$root/usr/share/doc/$package/"
install -m 0644 docs/*.md "$root/usr/share/doc/$package/docs/"
install -m 0644 docs/adr/*.md "$root/usr/share/doc/$package/docs/adr/"
cat >"$root/usr/share/doc/$package/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $package

Files: *
License: MPL-2.0
 On Debian systems the full text is in /usr/share/common-licenses/MPL-2.0.
COPYRIGHT

echo "/etc/default/syncserver" >"$root/DEBIAN/conffiles"
# The newest glibc symbol version the binaries use is the oldest libc6
# they run on (the bundled SQLite may need a recent one).
glibc="$(objdump -T "$root"/usr/bin/* | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)"
installed_kb="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
cat >"$root/DEBIAN/control" <<CONTROL
Package: $package
Version: $version
Architecture: $arch
Maintainer: Firefox Sync server maintainers <sync@localhost>
Installed-Size: $installed_kb
Depends: libc6 (>= $glibc), libgcc-s1, adduser, ca-certificates
Section: net
Priority: optional
Description: Firefox Sync server (tokenserver and SyncStorage 1.5)
 A self-hosted server for Firefox Sync: Firefox desktop, Android and iOS
 keep bookmarks, history, passwords, tabs and settings in sync through it.
 The all-in-one syncserver runs as the syncserver service on SQLite under
 /var/lib/syncserver; syncstorage and tokenserver run the two services
 apart, for many storage nodes.
CONTROL

cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd syncserver >/dev/null; then
        adduser --system --group --home /var/lib/syncserver \
            --gecos "Firefox Sync server" syncserver >/dev/null
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        if [ -z "$2" ]; then
            # A first install: enabled and started. An upgrade restarts it
            # only if it runs, and leaves a disabled service disabled.
            systemctl enable syncserver.service >/dev/null 2>&1 || true
            systemctl start syncserver.service || true
        else
            systemctl try-restart syncserver.service || true
        fi
    fi
fi
POSTINST
cat >"$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop syncserver.service || true
    systemctl disable syncserver.service >/dev/null 2>&1 || true
fi
PRERM
# Purging keeps /var/lib/syncserver: it holds the users' data and the
# master secret, which only an operator may throw away.
cat >"$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
if [ "$1" = purge ] && [ -d /var/lib/syncserver ]; then
    echo "firefox-sync-server: /var/lib/syncserver (the users' data and the master secret) is kept" >&2
fi
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

mkdir -p "$out_dir"
deb="$out_dir/${package}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
