#!/usr/bin/env bash
# Runs every test: builds the core for wasm32, generates the fixture images with real tools
# (mkntfs, ntfs-3g, sfdisk/sgdisk, qemu-img; cached by the generator's own hash), then the Rust
# unit and integration tests; the web page: its build, the worker's unit tests and the browser
# tests in headless Chromium. Needs what setup.sh installs, and root for FUSE mounts and loop devices.
set -euo pipefail
cd "$(dirname "$0")"

echo "== formatting and lints (cargo fmt --check, clippy -D warnings)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== core crates build for wasm32-unknown-unknown"
cargo build --target wasm32-unknown-unknown \
  -p kaifuku-io -p kaifuku-container -p kaifuku-partition -p kaifuku-bitlocker -p kaifuku-ntfs -p kaifuku-registry \
  -p kaifuku-rescue

echo "== fixtures (made by mkntfs, ntfs-3g, sfdisk, qemu-img; judged by ntfsinfo, sleuthkit)"
export KAIFUKU_FIXTURES="$PWD/tests/out/fixtures"
python3 tests/make-fixtures.py "$KAIFUKU_FIXTURES"

echo "== web page build (trunk build --release: dist/ and dist/kaifuku.html)"
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
trunk build --release
cargo build --release -p kaifuku-cli

echo "== worker unit tests in headless Chromium (wasm-bindgen-test)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver \
  cargo test --target wasm32-unknown-unknown -p kaifuku-web --test worker

echo "== browser tests (node --test; playwright-core drives /usr/bin/chromium)"
node --test --test-concurrency=1 tests/web/

echo "== cargo test"
cargo test --workspace --release
