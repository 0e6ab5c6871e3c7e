#!/usr/bin/env bash
# Runs the POSIX suite fuser is held to (pjdfstest 0.2.2) inside an app of an
# allow_other mount, and lists the failures that are not by design.
# By design: special files (fifo, socket, char, block) are refused; the
# mknod tests named below make fifos.
# Needs root. Usage: scripts/pjdfstest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v pjdfstest >/dev/null || cargo install pjdfstest --version 0.2.2 -j 2
id tests >/dev/null 2>&1 || useradd -M tests
cargo build --release -q
WORK=$(mktemp -d /var/tmp/pushfs-pjd.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  mountpoint -q "$WORK/mnt" && umount -l "$WORK/mnt" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# The suite switches to the `tests` user, who must be able to reach the mount.
chmod 755 "$WORK"
mkdir -p "$WORK/mnt"
PUSHFS_LOG=pushfs=warn target/release/pushfs mount "$WORK/mnt" --state-dir "$WORK/state" --allow-other &
PID=$!
for _ in $(seq 1 100); do [ -d "$WORK/mnt/cf" ] && break; sleep 0.1; done
mkdir "$WORK/mnt/cf/pjd" && chmod 777 "$WORK/mnt/cf/pjd"
(cd "$WORK/mnt/cf/pjd" && pjdfstest -p "$WORK/mnt/cf/pjd" > "$WORK/out.txt" 2>&1) || true
passed=$(grep -cE '\s+ok$' "$WORK/out.txt" || true)
failed=$(grep -c 'FAILED' "$WORK/out.txt" || true)
by_design='::(fifo|char|block|socket)\s|^mkfifo::|^mknod::(permission_bits_from_mode|changed_time_fields_success|uid_gid_eq_euid_egid)\s|^open::(socket_error|fifo_nonblock_wronly)'
unexpected=$(grep 'FAILED' "$WORK/out.txt" | grep -vE "$by_design" || true)
echo "pjdfstest: $passed passed, $failed failed (special files are refused by design)"
if [ -n "$unexpected" ]; then
  echo "unexpected failures:"; echo "$unexpected"; exit 1
fi
echo "no unexpected failures"
