#!/usr/bin/env bash
# Installs everything kaifuku needs on a fresh Debian machine (idempotent; cheap to re-run), then
# builds the release command-line tool and the web page (dist/). Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Tools the tests use as independent judges and to build fixtures:
# ntfs-3g (mkntfs, ntfs-3g FUSE, ntfsinfo, ntfsls, ntfsfix), sleuthkit (fls, istat, mmls),
# fdisk (sfdisk), gdisk (sgdisk), dosfstools (mkfs.vfat), qemu-utils (qemu-img), libvhdi-utils
# (vhdiinfo, a second VHDX reader), attr (setfattr),
# fuse3 (the FUSE mount helper), python3 (the fixture generator), mtools (fills the FAT ESP),
# faketime (fixed timestamps in fixtures), util-linux (losetup for 4096-byte-sector images),
# libqcow-utils, libvhdi-utils and libvmdk-utils (qcowinfo, vhdiinfo, vmdkinfo: second readers
# besides qemu-img), dislocker (dislocker-fuse, dislocker-file: an independent BitLocker
# implementation), libhivex-bin and python3-hivex (hivexsh, hivexget and the Python binding: they
# write the registry hives of the test volumes and judge kaifuku's hive reader).
APT_PACKAGES="ntfs-3g dislocker sleuthkit fdisk gdisk dosfstools mtools faketime qemu-utils attr fuse3 python3 python3-venv xxd util-linux libqcow-utils libvhdi-utils libvmdk-utils libhivex-bin python3-hivex"
# The web page's browser tests: Debian's Chromium and its WebDriver, and a Japanese font so the
# screenshots of the Japanese page show its text (fonts-vlgothic: a 2.2 MB download, 8 MB
# installed; the smallest CJK font package in Debian).
APT_PACKAGES="$APT_PACKAGES chromium chromium-driver fonts-vlgothic"
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

# The web page (web/, built by Trunk into dist/). Trunk 0.21.14 is the newest that this Rust
# accepts; wasm-bindgen-cli must be exactly the wasm-bindgen version in Cargo.lock (no --locked:
# its own lockfile pins a crate version the registry may lack). `cargo install` takes minutes
# the first time and is skipped when the right version is there.
if ! command -v node >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  echo "setup: Node.js 20 or later (with npm) is needed for the web page's build tools and tests" >&2
  exit 1
fi
TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p;}' Cargo.lock)
export PATH="$HOME/.cargo/bin:$PATH"
# Build tools are built unoptimised (opt-level 0, no LTO, many codegen units), without their
# default features (TLS and Trunk's update check: the page builds offline with the wasm-bindgen
# and wasm-opt installed here, and the worker tests talk plain HTTP to chromedriver), and share
# one target directory, so the crates both depend on are compiled once. Trunk only orchestrates
# cargo, wasm-bindgen and wasm-opt, and an unoptimised wasm-bindgen still processes our two wasm
# files in about a second, while optimised builds with TLS cost about three times the CPU
# (README, "Set-up time").
tools_target=$(mktemp -d)
trap 'rm -rf "$tools_target"' EXIT
install_tool() {
  CARGO_TARGET_DIR="$tools_target" CARGO_PROFILE_RELEASE_OPT_LEVEL=0 \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    nice cargo install "$@"
}
if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
  install_tool trunk --version "$TRUNK_VERSION" --locked --no-default-features
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  install_tool wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --no-default-features
fi
# wasm-opt (npm binaryen: Debian's is too old for this Rust's output), playwright-core (drives
# the system Chromium in the tests) and Azurite (Microsoft's Azure Storage emulator, the server of
# the cloud tests), pinned by package-lock.json.
npm ci --no-audit --no-fund --loglevel=error
# moto (an AWS emulator: the S3 server of the cloud tests) and boto3 (AWS's SDK, the tests'
# independent writer and reader), in a virtual environment of their own.
if ! .venv-tools/bin/python -c 'import moto, boto3' 2>/dev/null; then
  python3 -m venv .venv-tools
  .venv-tools/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-cloud.txt
fi
# Trunk builds offline; its `cargo metadata` wants every platform's crates in the cache.
cargo fetch --quiet
PATH="$PWD/node_modules/.bin:$PATH" nice trunk build --release
echo "setup: done in ${SECONDS} s. Try: target/release/kaifuku inspect IMAGE, or ./serve.sh for the web page (dist/; dist/kaifuku.html also works alone, opened from disk)"
