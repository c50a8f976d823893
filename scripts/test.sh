#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine as root: installs what is missing, starts
# dockerd when no engine answers, builds the local test images, then runs fmt, clippy and every
# test with the engine required.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v nginx >/dev/null || missing+=(nginx)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v curl >/dev/null || missing+=(curl)
command -v systemd-socket-activate >/dev/null || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker version >/dev/null 2>&1; then
    echo "== starting dockerd"
    (setsid dockerd >/var/log/stagelet-test-dockerd.log 2>&1 &)
    for _ in $(seq 60); do
        docker version >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker version >/dev/null 2>&1 || { tail -20 /var/log/stagelet-test-dockerd.log; echo "dockerd did not start" >&2; exit 1; }
fi

echo "== test images"
tests/images/build.sh

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
STAGELET_TEST_REQUIRE_ENGINE=1 cargo test "$@"
