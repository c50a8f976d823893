#!/bin/sh
# Packaging checks of the test command: build the deb and the rpm, lint them, install the deb
# on this machine, check what it put where, verify the units, then remove and purge it.
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

echo "-- install"
planted=/var/lib/stagelet/data/keep/me/planted.txt
dpkg -i "$deb" >/dev/null
test "$(stat -c '%a %U %G' /var/lib/stagelet)" = "750 root stagelet" || fail "/var/lib/stagelet: $(stat -c '%a %U %G' /var/lib/stagelet)"
test "$(stat -c '%a' /etc/nginx/stagelet)" = "755" || fail "/etc/nginx/stagelet mode"
getent group stagelet >/dev/null || fail "no stagelet group"
for f in /usr/bin/stagelet:755 /usr/bin/stagectl:755 /etc/stagelet/stagelet.toml:644 /etc/nginx/snippets/stagelet.conf:644 \
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

echo "-- remove and purge"
mkdir -p "$(dirname "$planted")" && echo "customer data" > "$planted"
dpkg -r stagelet >/dev/null
test -f /etc/stagelet/stagelet.toml || fail "remove must keep the configuration"
dpkg -P stagelet | tee target/purge.txt
test ! -e /etc/stagelet || fail "purge left /etc/stagelet"
test "$(cat "$planted")" = "customer data" || fail "purge touched customer data"
grep -q "/var/lib/stagelet" target/purge.txt || fail "purge did not say where the data remains"
rm -rf /var/lib/stagelet/data/keep
echo "packaging: ok"
