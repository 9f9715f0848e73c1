#!/usr/bin/env bash
# Runs every test: builds the core for wasm32, generates the fixture images with real tools
# (mkntfs, ntfs-3g, sfdisk/sgdisk, qemu-img; cached by the generator's own hash), then the Rust
# unit and integration tests. Needs what setup.sh installs, and root for FUSE mounts.
set -euo pipefail
cd "$(dirname "$0")"

echo "== core crates build for wasm32-unknown-unknown"
cargo build --target wasm32-unknown-unknown \
  -p kaifuku-io -p kaifuku-container -p kaifuku-partition -p kaifuku-ntfs -p kaifuku-rescue

echo "== fixtures (made by mkntfs, ntfs-3g, sfdisk, qemu-img; judged by ntfsinfo, sleuthkit)"
export KAIFUKU_FIXTURES="$PWD/tests/out/fixtures"
python3 tests/make-fixtures.py "$KAIFUKU_FIXTURES"

echo "== cargo test"
cargo test --workspace --release
