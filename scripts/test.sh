#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine as root: installs what is missing, starts
# dockerd when no engine answers, builds the local test images, then runs fmt, clippy and every
# test with the engine required, then checks that the tests left nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v nginx >/dev/null || missing+=(nginx)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v curl >/dev/null || missing+=(curl)
command -v git >/dev/null || missing+=(git)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v systemd-socket-activate >/dev/null || missing+=(systemd)
command -v openssl >/dev/null || missing+=(openssl)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3 python3-venv)
command -v lintian >/dev/null || missing+=(lintian)
command -v rpmlint >/dev/null || missing+=(rpmlint)
# rpmlint reads packages through the rpm tool, which its Debian package does not pull in.
command -v rpm >/dev/null || missing+=(rpm)
command -v pkg-config >/dev/null || missing+=(pkg-config)
# ACME tests (tests/acme.rs): pebble and pebble-challtestsrv, one pair started per test.
command -v pebble-challtestsrv >/dev/null || missing+=(pebble)
# -- issue 15 (real images): the test registry and its htpasswd
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
# -- end issue 15
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
# -- issue 15 (real images): stand-ins of the official images, and the test registries
tests/images/build-standins.sh
# issue 16: the Odoo stand-in (mmdebstrap from Debian's packages; rebuilt only when it changed)
tests/images/build-odoo.sh
tests/images/registry.sh
# -- end issue 15

echo "== gixy over the rendered nginx configs (the golden sites and the agent's global file)"
gixy=$(command -v gixy || true)
if [ -z "$gixy" ]; then
    [ -x target/gixy-venv/bin/gixy ] || { python3 -m venv target/gixy-venv && target/gixy-venv/bin/pip install -q gixy-ng; }
    gixy=target/gixy-venv/bin/gixy
fi
gixy_root=$(mktemp -d)
printf 'events {}\nhttp {\n    include %s/tests/golden/global/stagelet.conf;\n    include %s/tests/golden/nginx/*.conf;\n}\n' "$PWD" "$PWD" > "$gixy_root/nginx.conf"
"$gixy" -ll "$gixy_root/nginx.conf"
rm -rf "$gixy_root"

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== packages: build, lint, install, remove, purge"
./packaging/check.sh

echo "== cargo test"
since=$(date +%s)
status=0
STAGELET_TEST_REQUIRE_ENGINE=1 cargo test --no-fail-fast "$@" || status=$?

# Whatever the tests' outcome: nothing they started may still run (processes, containers,
# networks); only what appeared during this run counts.
echo "== leftovers"
scripts/leftovers.sh --since "$since" || status=1
exit $status
