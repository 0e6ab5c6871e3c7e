#!/usr/bin/env bash
# A long check, not part of scripts/test.sh: the File System eXerciser on a
# mount, three at once in one app, each verifying every read against its own
# model of the file:
#   1. pread/pwrite, mmap reads and writes, msync, truncate, fsync, and a
#      close and reopen (so a seal) about one operation in ten;
#   2. the same with holes: punch hole, posix_fallocate and copy_file_range,
#      in a file of up to 16 MiB, so whole MiBs of holes get sealed sparse;
#   3. O_DIRECT, when FSX_C names a build of xfstests' C fsx (the Rust fsx
#      has no O_DIRECT): `-Z -R -W` with page-aligned I/O, close/reopen and
#      its fallocate modes (the ones pushfs refuses are skipped by fsx).
# fsx is the Rust port from crates.io (`cargo install fsx`), pinned below.
# Needs root. Usage: scripts/fsx.sh [OPS]   (default 100000 per run)
# PUSHFS=path/to/pushfs skips the release build (a debug binary is slower).
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${1:-100000}
FSX_VERSION=0.3.2
FSX_ROOT=${FSX_ROOT:-$HOME/.cache/pushfs-fsx}
if ! "$FSX_ROOT/bin/fsx" --version 2>/dev/null | grep -q "$FSX_VERSION"; then
  cargo install fsx --version "$FSX_VERSION" --root "$FSX_ROOT" -j 2 --locked -q
fi
FSX="$FSX_ROOT/bin/fsx"
if [ -z "${PUSHFS:-}" ]; then
  cargo build --release -q
  PUSHFS=target/release/pushfs
fi
WORK=$(mktemp -d /var/tmp/pushfs-fsx.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  mountpoint -q "$WORK/mnt" && umount -l "$WORK/mnt" || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/mnt" "$WORK/logs"
PUSHFS_LOG=pushfs=warn "$PUSHFS" mount "$WORK/mnt" --state-dir "$WORK/state" \
  > "$WORK/logs/pushfs.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do [ -d "$WORK/mnt/cf" ] && break; sleep 0.1; done
APP="$WORK/mnt/cf/fsx"
mkdir "$APP"

cat > "$WORK/plain.toml" <<'EOF'
[weights]
close_open = 2
read = 10
write = 10
mapread = 10
mapwrite = 10
invalidate = 1
truncate = 2
fsync = 1
fdatasync = 1
EOF
cat > "$WORK/holes.toml" <<'EOF'
flen = 16777216
[opsize]
max = 1048576
[weights]
close_open = 2
read = 10
write = 6
mapread = 5
mapwrite = 5
truncate = 2
fsync = 1
posix_fallocate = 3
punch_hole = 6
copy_file_range = 3
EOF

run() { # name, command...
  local name=$1; shift
  if "$@" > "$WORK/logs/$name.log" 2>&1; then
    echo "$name: ok"
  else
    echo "$name: FAILED"; tail -40 "$WORK/logs/$name.log"; return 1
  fi
}

start=$(date +%s)
pids=()
run mmap-close-reopen "$FSX" -N "$OPS" -S 1 -f "$WORK/plain.toml" -P "$WORK/logs" "$APP/plain" & pids+=($!)
run holes "$FSX" -N "$OPS" -S 2 -f "$WORK/holes.toml" -P "$WORK/logs" "$APP/holes" & pids+=($!)
if [ -n "${FSX_C:-}" ]; then
  run o-direct "$FSX_C" -q -N "$OPS" -S 3 -c 10 -Z -R -W -r 4096 -w 4096 -t 4096 \
    -P "$WORK/logs" "$APP/direct" & pids+=($!)
else
  echo "o-direct: skipped (set FSX_C to xfstests' fsx binary)"
fi
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
echo "fsx: $OPS operations per run, $(( $(date +%s) - start )) s"
if grep -qiE "panicked|error" "$WORK/logs/pushfs.log"; then
  echo "pushfs logged errors:"; grep -iE "panicked|error" "$WORK/logs/pushfs.log" | head -20
  failed=1
fi
exit "$failed"
