#!/bin/sh
# Packaging checks of the test command: build the deb and the rpm, lint them, install the deb
# on this machine, check what it put where, verify the units, run a stage through Debian's
# nginx on port 80 with no manual step (nginx-live.sh), then remove and purge it: `nginx -t`
# passes all along and nginx still starts after the purge.
set -eu
cd "$(dirname "$0")/.."
fail() { echo "packaging: $*" >&2; exit 1; }

command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
command -v cargo-generate-rpm >/dev/null || cargo install --locked cargo-generate-rpm
./packaging/build.sh >/dev/null
deb=target/debian/stagelet_$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)-1_amd64.deb
rpm=$(ls target/generate-rpm/*.rpm)

echo "-- lintian"
lintian "$deb" > target/lintian.txt 2>/dev/null || true
cat target/lintian.txt
! grep -q '^E:' target/lintian.txt || fail "lintian reports errors"
echo "-- rpmlint"
rpmlint -r packaging/rpmlintrc "$rpm" > target/rpmlint.txt || { cat target/rpmlint.txt; fail "rpmlint reports errors"; }
grep -E ': (E|W): |errors' target/rpmlint.txt
! grep -q ': E: ' target/rpmlint.txt || fail "rpmlint reports errors"
# Fedora's nginx, like Debian's, includes conf.d/*.conf in its http block.
rpm -qlp "$rpm" 2>/dev/null | grep -qx /etc/nginx/conf.d/stagelet.conf || fail "the rpm does not put stagelet.conf in /etc/nginx/conf.d"
rpm -qcp "$rpm" 2>/dev/null | grep -qx /etc/nginx/conf.d/stagelet.conf || fail "the rpm's /etc/nginx/conf.d/stagelet.conf is not a config file"
others=$(rpm -qlp "$rpm" 2>/dev/null | grep '^/etc/nginx/' | grep -vx /etc/nginx/conf.d/stagelet.conf || true)
test -z "$others" || fail "the rpm puts other files under /etc/nginx: $others"
dpkg-deb -c "$deb" > target/deb-contents.txt
grep -q ' \./etc/nginx/conf\.d/stagelet\.conf$' target/deb-contents.txt || fail "the deb does not put stagelet.conf in /etc/nginx/conf.d"

echo "-- before install: port 80 and the system nginx"
# The live check below runs Debian's nginx on port 80; nothing else may hold it.
dpkg -s nginx >/dev/null 2>&1 || fail "Debian's nginx package is not installed"
if ss -Hltn 'sport = :80' | grep -q .; then fail "port 80 is in use: $(ss -Hltnp 'sport = :80')"; fi
! { [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; } || fail "the system nginx is already running"
nginx -t 2>/dev/null || fail "nginx -t fails before install: $(nginx -t 2>&1)"
work=$(mktemp -d)
chmod 755 "$work"
# Whatever happens: the agent and the nginx started here stop, the containers this check made
# go, the package is purged.
cleanup() {
    status=$?
    if [ -s "$work/daemon.pid" ]; then
        STAGELET_SOCKET="$work/stagelet.sock" stagectl stage cancel pkgcheck/qa >/dev/null 2>&1 || true
        kill -TERM "$(cat "$work/daemon.pid")" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$(cat "$work/daemon.pid")" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$(cat "$work/daemon.pid")" 2>/dev/null || true
    fi
    for c in $(docker ps -aq --filter "name=^stl-pkgcheck$$-" 2>/dev/null); do docker rm -f "$c" >/dev/null 2>&1 || true; done
    for n in $(docker network ls -q --filter "name=^stl-pkgcheck$$-" 2>/dev/null); do docker network rm "$n" >/dev/null 2>&1 || true; done
    if [ -s "$work/nginx.pid" ]; then
        kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$(cat "$work/nginx.pid")" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ "$status" -ne 0 ] && dpkg -s stagelet >/dev/null 2>&1; then dpkg -P stagelet >/dev/null 2>&1 || true; fi
    rm -f /etc/nginx/stagelet/pkgcheck--qa.conf
    rmdir /etc/nginx/stagelet 2>/dev/null || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "-- install"
planted=/var/lib/stagelet/data/keep/me/planted.txt
# As an operator of 0.1.0 left it: the old snippet linked into conf.d by hand. The new
# conffile takes the link's place without a prompt.
if [ ! -e /etc/nginx/conf.d/stagelet.conf ] && [ ! -e /etc/nginx/snippets/stagelet.conf ]; then
    echo "# the 0.1.0 snippet" > /etc/nginx/snippets/stagelet.conf
    ln -s /etc/nginx/snippets/stagelet.conf /etc/nginx/conf.d/stagelet.conf
    old_layout=1
fi
dpkg -i "$deb" >/dev/null
if [ "${old_layout:-}" = 1 ]; then
    rm -f /etc/nginx/snippets/stagelet.conf
    test ! -L /etc/nginx/conf.d/stagelet.conf || fail "the 0.1.0 link into conf.d is still there"
fi
cmp -s etc/nginx/stagelet.conf /etc/nginx/conf.d/stagelet.conf || fail "/etc/nginx/conf.d/stagelet.conf is not the shipped file"
test "$(stat -c '%a %U %G' /var/lib/stagelet)" = "750 root stagelet" || fail "/var/lib/stagelet: $(stat -c '%a %U %G' /var/lib/stagelet)"
test "$(stat -c '%a' /etc/nginx/stagelet)" = "755" || fail "/etc/nginx/stagelet mode"
getent group stagelet >/dev/null || fail "no stagelet group"
for f in /usr/bin/stagelet:755 /usr/bin/stagectl:755 /etc/stagelet/stagelet.toml:644 /etc/nginx/conf.d/stagelet.conf:644 \
         /usr/lib/systemd/system/stagelet.service:644 /usr/lib/systemd/system/stagelet.socket:644 \
         /usr/share/man/man8/stagelet.8.gz:644 /usr/share/man/man1/stagectl.1.gz:644 \
         /usr/share/bash-completion/completions/stagectl:644; do
    test "$(stat -c '%a' "${f%:*}")" = "${f#*:}" || fail "${f%:*}: mode $(stat -c '%a' "${f%:*}" 2>/dev/null || echo missing)"
done
stagelet --version | grep -q "^stagelet " || fail "stagelet --version"
stagectl --version | grep -q "^stagectl " || fail "stagectl --version"
stagelet check-config /etc/stagelet/stagelet.toml >/dev/null || fail "the shipped config does not check"
systemctl show -p FragmentPath stagelet.service 2>/dev/null | grep -q /usr/lib/systemd/system/stagelet.service \
    || test -f "$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /usr/lib/systemd/system)/stagelet.service" \
    || fail "unit not where systemd looks"
echo "-- systemd-analyze"
systemd-analyze verify /usr/lib/systemd/system/stagelet.service /usr/lib/systemd/system/stagelet.socket
score=$(systemd-analyze security --offline=yes /usr/lib/systemd/system/stagelet.service 2>/dev/null | sed -n 's/.*Overall exposure level for stagelet.service: \([0-9.]*\).*/\1/p')
echo "exposure score: $score (goal <= 4.0)"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 4.0) }' || fail "exposure score $score"

echo "-- upgrade (the same package again)"
dpkg -i "$deb" >/dev/null
nginx -t 2>/dev/null || fail "nginx -t fails after an upgrade: $(nginx -t 2>&1)"

echo "-- nginx with the installed agent"
packaging/nginx-live.sh "$work"

echo "-- remove and purge"
mkdir -p "$(dirname "$planted")" && echo "customer data" > "$planted"
dpkg -r stagelet >/dev/null
test -f /etc/stagelet/stagelet.toml || fail "remove must keep the configuration"
nginx -t 2>/dev/null || fail "nginx -t fails after remove: $(nginx -t 2>&1)"
dpkg -P stagelet | tee target/purge.txt
test ! -e /etc/stagelet || fail "purge left /etc/stagelet"
test ! -e /etc/nginx/conf.d/stagelet.conf || fail "purge left /etc/nginx/conf.d/stagelet.conf"
test ! -e /etc/nginx/stagelet/global || fail "purge left the agent's global nginx file"
nginx -t 2>/dev/null || fail "nginx -t fails after purge: $(nginx -t 2>&1)"
kill -QUIT "$(cat "$work/nginx.pid")"
for _ in $(seq 50); do kill -0 "$(cat "$work/nginx.pid")" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$(cat "$work/nginx.pid")" 2>/dev/null || fail "nginx did not stop"
nginx || fail "nginx does not start after purge: $(tail -3 /var/log/nginx/error.log)"
for _ in $(seq 50); do [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null && break; sleep 0.1; done
cat /run/nginx.pid > "$work/nginx.pid"
curl -s -m 10 http://127.0.0.1/ | grep -q '<title>Welcome to nginx!</title>' || fail "nginx after purge does not serve its default page"
echo "nginx -t passes after remove and purge; nginx starts after purge"
test "$(cat "$planted")" = "customer data" || fail "purge touched customer data"
grep -q "/var/lib/stagelet" target/purge.txt || fail "purge did not say where the data remains"
rm -rf /var/lib/stagelet/data/keep
echo "packaging: ok"
