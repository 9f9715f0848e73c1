#!/usr/bin/env bash
# Installs everything kaifuku needs on a fresh Debian machine (idempotent; cheap to re-run), then
# builds the release command-line tool. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Tools the tests use as independent judges and to build fixtures:
# ntfs-3g (mkntfs, ntfs-3g FUSE, ntfsinfo, ntfsls, ntfsfix), sleuthkit (fls, istat, mmls),
# fdisk (sfdisk), gdisk (sgdisk), dosfstools (mkfs.vfat), qemu-utils (qemu-img), attr (setfattr),
# fuse3 (the FUSE mount helper), python3 (the fixture generator), mtools (fills the FAT ESP),
# faketime (fixed timestamps in fixtures), util-linux (losetup for 4096-byte-sector images).
APT_PACKAGES="ntfs-3g sleuthkit fdisk gdisk dosfstools mtools faketime qemu-utils attr fuse3 python3 xxd util-linux"
missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing; install Rust with rustup first" >&2
  exit 1
fi
# The core crates must also build for the browser.
rustup target list --installed | grep -q '^wasm32-unknown-unknown$' || rustup target add wasm32-unknown-unknown

cargo build --release -p kaifuku-cli
echo "setup: done. Try: target/release/kaifuku inspect IMAGE"
