#!/usr/bin/env bash
# Makes a base image for deploy/Containerfile's runtime stage when no
# registry is reachable: a minimal Debian made with debootstrap from
# Debian's own mirror, imported into podman under a localhost/ tag (never
# the official one, which later builds would then take for it); build with
# --build-arg RUNTIME_IMAGE=<that tag>. Does nothing when podman has it
# already. Root.
#
#   integration-tests/deploy/base-image.sh [TAG]
set -euo pipefail
tag="${1:-localhost/debian:bookworm-slim}"
suite="${SUITE:-bookworm}"
mirror="${MIRROR:-http://deb.debian.org/debian}"

if podman image exists "$tag"; then
    echo "base image $tag: present"
    exit 0
fi
rootfs="$(mktemp -d /var/tmp/sync-base.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "base image $tag: debootstrap $suite from $mirror"
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -n 30 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"
# As Debian's slim images: no package lists, documentation or caches.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
tar -C "$rootfs" -c . | podman import --quiet - "$tag" >/dev/null
echo "base image $tag: imported ($(podman image inspect --format '{{.Size}}' "$tag") bytes)"
