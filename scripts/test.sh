#!/usr/bin/env bash
# Runs every test: unit tests, client-vs-emulator tests and real-mount tests.
# Installs the tools the real-mount tests drive (rsync, setfattr/getfattr,
# fallocate, vim, git, unzip, tar, curl, fusermount3, setpriv, smbd,
# smbclient) if missing.
# Mounting needs root (or fusermount3) and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# tool:package
for pair in rsync:rsync setfattr:attr fallocate:util-linux vim:vim git:git unzip:unzip tar:tar curl:curl fusermount3:fuse3 setpriv:util-linux smbd:samba smbclient:smbclient; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing tools: ${missing[*]} (install them, then run again)" >&2
    exit 1
  fi
fi
if [ ! -e /dev/fuse ]; then
  echo "/dev/fuse is missing: the real-mount tests cannot run here" >&2
  exit 1
fi

# Two build jobs and two test threads: the machines this runs on have 2 cores.
cargo test -j 2 -- --test-threads=2

# The vendored fuser's own tests of pushfs's patch (vendor/fuser/PUSHFS-PATCH.md).
# fuser is not a workspace member, so they run from a copy: its lock file and
# target dir stay out of the tree, and its rust-toolchain pin (an old toolchain
# this machine need not have) gives way to the one building pushfs.
fuser_copy=$(mktemp -d)
trap 'rm -rf "$fuser_copy"' EXIT
cp -r vendor/fuser "$fuser_copy/fuser"
rm -f "$fuser_copy/fuser/rust-toolchain"
(target="$PWD/target/fuser-patch" && cd "$fuser_copy/fuser" && CARGO_TARGET_DIR="$target" \
  cargo test -j 2 --lib reader_role)
