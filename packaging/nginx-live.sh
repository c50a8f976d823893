#!/bin/sh
# Part of packaging/check.sh, with the deb installed: Debian's nginx (its default site still
# enabled) started on port 80, the installed /usr/bin/stagelet started by hand (no systemd
# here) with the test images as its profile and nginx's system paths, then a stage created
# with stagectl. Nothing was wired by hand: the stage answers through port 80 and an unknown
# Host gets Debian's default page, never the stage. check.sh's trap cleans up on failure.
#
#   nginx-live.sh WORKDIR   (writes WORKDIR/daemon.pid and WORKDIR/nginx.pid for the trap)
set -eu
work=$1
fail() { echo "packaging (nginx): $*" >&2; exit 1; }
domain=qa.pkgcheck.example.com
export STAGELET_SOCKET="$work/stagelet.sock"

test -e /etc/nginx/sites-enabled/default || fail "Debian's default site is not enabled: this check needs it"
nginx -t 2>/dev/null || fail "nginx -t fails after install: $(nginx -t 2>&1)"
echo "nginx -t passes after install"

echo "-- nginx on port 80"
nginx || fail "the system nginx does not start: $(tail -3 /var/log/nginx/error.log)"
for _ in $(seq 50); do [ -s /run/nginx.pid ] && break; sleep 0.1; done
cat /run/nginx.pid > "$work/nginx.pid" || fail "nginx wrote no /run/nginx.pid"

echo "-- the installed agent, started by hand"
cat > "$work/stagelet.toml" <<EOF
[agent]
state_dir = "$work/state"
socket = "$work/stagelet.sock"
socket_group = ""
default_profile = "test"
shutdown_timeout = "10s"
[docker]
label_prefix = "io.stagelet.pkgcheck$$"
name_prefix = "stl-pkgcheck$$-"
[ports]
http = "39000-39009"
code_server = "39010-39019"
[profiles.test]
grace_period = "5s"
[profiles.test.app]
image = "stagelet-test/app:1"
port = 8069
mounts = { filestore = "/var/lib/odoo", addons = "/mnt/extra-addons" }
env = { HOST = "{db_host}", APP_ID = "{subscription}-{stage}" }
[profiles.test.db]
image = "stagelet-test/postgres:1"
port = 5432
user = "odoo"
mounts = { db = "/var/lib/postgresql/data" }
env = { POSTGRES_USER = "{db_user}", POSTGRES_PASSWORD = "{db_password}", POSTGRES_DB = "postgres" }
EOF
/usr/bin/stagelet check-config "$work/stagelet.toml" >/dev/null || fail "the check's configuration does not check"
/usr/bin/stagelet serve --config "$work/stagelet.toml" > "$work/daemon.log" 2>&1 &
echo $! > "$work/daemon.pid"
for _ in $(seq 100); do stagectl info >/dev/null 2>&1 && break; sleep 0.2; done
stagectl info >/dev/null || { cat "$work/daemon.log"; fail "the agent does not answer"; }
global=/etc/nginx/stagelet/global/stagelet.conf
grep -q 'map $http_upgrade $stagelet_connection_upgrade' "$global" || fail "the agent wrote no $global"

stagectl subscription create pkgcheck --stage-limit 1 >/dev/null
stagectl stage create pkgcheck/qa --type qa --domain "$domain" >/dev/null \
    || { tail -20 "$work/daemon.log"; fail "stage create failed"; }

echo "-- through port 80"
body=$(curl -s -m 10 -H "Host: $domain" http://127.0.0.1/) || true
echo "$body" | grep -q '^stagelet test app pkgcheck-qa$' || fail "the stage does not answer through port 80: $body"
echo "the stage answers through port 80"
other=$(curl -s -m 10 -H "Host: unknown.example.com" http://127.0.0.1/ || true)
echo "$other" | grep -q 'stagelet test app' && fail "an unknown Host reached the stage"
echo "$other" | grep -q '<title>Welcome to nginx!</title>' || fail "an unknown Host did not get Debian's default page: $other"
echo "an unknown Host gets Debian's default page"

stagectl stage cancel pkgcheck/qa >/dev/null
test ! -e /etc/nginx/stagelet/pkgcheck--qa.conf || fail "cancel left the stage's site"
kill -TERM "$(cat "$work/daemon.pid")"
for _ in $(seq 100); do kill -0 "$(cat "$work/daemon.pid")" 2>/dev/null || break; sleep 0.2; done
! kill -0 "$(cat "$work/daemon.pid")" 2>/dev/null || fail "the agent did not stop on SIGTERM"
rm -f "$work/daemon.pid"
nginx -t 2>/dev/null || fail "nginx -t fails with the agent's files: $(nginx -t 2>&1)"
