#!/usr/bin/env bash
# Builds the Debian bookworm base image locally, for machines that reach a Debian mirror but
# no container registry. It is imported as debian:bookworm-slim, the name the Containerfiles
# use, so the same Containerfiles build on the official image wherever a registry is at hand
# (sites do that: they need no part of this script).
#   docker/build-base.sh [IMAGE-NAME]     (root; needs debootstrap and podman)
set -euo pipefail

name=${1:-debian:bookworm-slim}

# The mirror apt uses on this machine (deb822 sources first, then the one-line format).
mirror=$(
    {
        grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true
        grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '{print $2}' || true
    } | grep -E '/debian/?$' | head -n 1 || true
)
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
security=${mirror%/debian}/debian-security

root=$(mktemp -d /var/tmp/habitus-base.XXXXXX)
trap 'rm -rf "$root"' EXIT

debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null

# What the official slim image does: no documentation, manual pages or translations
# installed by later packages, no package lists or caches left in layers.
cat >"$root/etc/dpkg/dpkg.cfg.d/excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/log/*.log "$root"/tmp/*
find "$root/usr/share/doc" -type f ! -name copyright -delete
: >"$root/etc/machine-id"

tar -C "$root" --numeric-owner -c . |
    podman import -q --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$name" >/dev/null
echo "$name from $mirror"
