#!/usr/bin/env bash
# The main job: set up, start berthd on its embedded defaults (root /var/lib/berth, state /run/berth, socket
# /run/berth/berth.sock), drive it with containerd's ctr and with berth: content, then an image built here from
# busybox-static (tools/images), imported, unpacked and mounted, and a container run from it (runc, through
# containerd's shim), then stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh >/dev/null
SOCK=/run/berth/berth.sock
LOG=$(mktemp /tmp/berthd-demo.XXXXXX.log)
# berthd and berth are the commands setup.sh put on PATH (/usr/local/bin).
berthd >"$LOG" 2>&1 &
pid=$!
WORK=$(mktemp -d /tmp/berth-demo.XXXXXX)
stop() {
  mountpoint -q "$WORK/rootfs" 2>/dev/null && umount "$WORK/rootfs"
  berth -n demo tasks rm -f demo-run >/dev/null 2>&1 || true
  berth -n demo containers rm demo-run >/dev/null 2>&1 || true
  rm -rf "$WORK"
  kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  echo "berthd stopped (log: $LOG)"
}
trap stop EXIT
for _ in $(seq 100); do [ -S "$SOCK" ] && ctr --address "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null || { cat "$LOG"; exit 1; }
export BERTH_ADDRESS="$SOCK"
run() { echo; echo "\$ $*"; "$@"; }
# A previous demo that was interrupted may have left its namespace behind.
for d in $(ctr --address "$SOCK" -n demo content ls -q 2>/dev/null); do ctr --address "$SOCK" -n demo content rm "$d" >/dev/null; done
ctr --address "$SOCK" namespaces rm demo >/dev/null 2>&1 || true
run ctr --address "$SOCK" version
run ctr --address "$SOCK" plugins ls
run berth plugins ls
run ctr --address "$SOCK" namespaces create demo owner=berth
run ctr --address "$SOCK" namespaces ls
blob=$(mktemp /tmp/berth-demo-blob.XXXXXX)
echo "hello from berth" > "$blob"
run ctr --address "$SOCK" -n demo content ingest demo-ref < "$blob"
run ctr --address "$SOCK" -n demo content ls
run berth -n demo content ls
digest="sha256:$(sha256sum "$blob" | cut -d' ' -f1)"
rm -f "$blob"
run ctr --address "$SOCK" -n demo content rm "$digest"

# An image built here (no downloads): an OCI layout of busybox-static, as a tarball.
node tools/images/build.mjs tiny "$WORK/tiny" >/dev/null
tar -C "$WORK/tiny" -cf "$WORK/tiny.tar" .
run berth -n demo images import --base-name demo.local/busybox "$WORK/tiny.tar"
run ctr --address "$SOCK" -n demo images ls
run berth -n demo images check
run ctr --address "$SOCK" -n demo snapshots ls
mkdir "$WORK/rootfs"
run berth -n demo images mount demo.local/busybox:latest "$WORK/rootfs"
run ls -l "$WORK/rootfs/bin/busybox"
run berth -n demo images unmount --rm "$WORK/rootfs"
# A container from the image: berth makes the OCI spec (containerd's defaults + the image config), the snapshot and
# the stdio FIFOs; berthd runs it through containerd-shim-runc-v2 and runc; the exit status is berth's.
# Leave the daemon's root as we found it (quietly, after the container), so the demo can run again.
cleanup() {
  berth -n demo images rm --sync demo.local/busybox:latest >/dev/null
  ctr --address "$SOCK" namespaces rm demo >/dev/null
}
run berth -n demo run --rm demo.local/busybox:latest demo-run /bin/sh -c 'echo "hello from $(uname -m) busybox in a berth container, pid $$, host $(hostname)"'
cleanup
