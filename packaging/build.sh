#!/bin/sh
# Builds the deb and the rpm: release binaries, completions and man pages generated from clap.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bins
mkdir -p target/assets
for shell in bash zsh fish; do
    target/release/stagectl completions "$shell" > "target/assets/stagectl.$shell"
done
mv target/assets/stagectl.zsh target/assets/_stagectl
target/release/stagelet man | gzip -9n > target/assets/stagelet.8.gz
target/release/stagectl man | gzip -9n > target/assets/stagectl.1.gz
cargo deb --no-build
command -v cargo-generate-rpm >/dev/null && cargo generate-rpm
ls target/debian/*.deb target/generate-rpm/*.rpm
