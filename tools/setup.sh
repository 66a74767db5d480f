#!/usr/bin/env bash
# Idempotent setup of a fresh Debian 12 machine (run as root): system packages, the pinned pnpm, dependencies, build.
set -euo pipefail
cd "$(dirname "$0")/.."

# golang-github-containerd-containerd-dev: containerd 1.6's .proto files, the reference the api tests check ours against.
# attr: getfattr, the independent reader @berth/sys's xattr tests check binary values with. @berth/sys itself needs
# nothing from apt: koffi's prebuilt binary comes from npm, and its fallbacks use util-linux, always installed.
# isal (igzip), pigz, zstd: the walking differ spawns them to decompress layers (faster than Node's zlib, and Node 20
# has no zstd); without them it falls back to zlib for gzip and refuses zstd layers.
# busybox-static, umoci, skopeo, apache2-utils (htpasswd: bcrypt entries), openssl (the token server's certificate):
# the test images (tools/images), their reference trees and the registry harness's auth modes.
# golang-go: builds the containerd 1.6 Go client (from golang-github-containerd-containerd-dev, whose dependencies
# are every package the client imports) offline in GOPATH mode for packages/daemon/test/go-client.ts.
# runc, crun, containerd (for containerd-shim-runc-v2 and ctr): the runtime plugin's shims; crun stands in for runc.
# prometheus: promtool, the strict checker the metrics tests run on a real scrape (its daemon is never started).
APT_PACKAGES=(runc crun containerd docker-registry busybox-static skopeo umoci golang-github-containerd-containerd-dev golang-go attr isal pigz zstd apache2-utils openssl prometheus)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # A policy-rc.d that says no keeps the package scripts from starting Debian's containerd or registry daemons.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

export npm_config_nodedir=/usr NX_DAEMON=false NX_NO_CLOUD=true
PNPM=(npx -y pnpm@12.4.2)
if [ "${CI:-}" = "true" ]; then "${PNPM[@]}" install --frozen-lockfile; else "${PNPM[@]}" install; fi
"${PNPM[@]}" exec nx run-many -t build --output-style=static

# berth and berthd as commands on PATH: links to this checkout's launchers (docs/operations.md). A later setup from
# another checkout points them there instead.
for cmd in berth:packages/cli/dist/berth-launch.cjs berthd:packages/daemon/dist/berthd-launch.cjs; do
  ln -sfn "$PWD/${cmd#*:}" "/usr/local/bin/${cmd%%:*}"
done
