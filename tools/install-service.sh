#!/usr/bin/env bash
# Installs berthd as a systemd service (docs/operations.md): the unit, and /etc/berth/config.toml when there is none.
# Run after tools/setup.sh, as root. Starts nothing: `systemctl enable --now berthd` does, when you choose to.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/local/bin/berthd ] || { echo "install-service: /usr/local/bin/berthd is missing; run tools/setup.sh first" >&2; exit 1; }
install -D -m 0644 packaging/systemd/berthd.service /etc/systemd/system/berthd.service
if [ ! -e /etc/berth/config.toml ]; then
  install -d -m 0755 /etc/berth
  /usr/local/bin/berthd config default > /etc/berth/config.toml
  echo "install-service: wrote the default configuration to /etc/berth/config.toml"
fi
systemd-analyze verify /etc/systemd/system/berthd.service
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
echo "install-service: installed /etc/systemd/system/berthd.service; start it with: systemctl enable --now berthd"
