#!/bin/sh
# The stand-ins of the official images (stagelet-test/app:2, stagelet-test/code-server:1).
# The image runs as a non-root uid, as the official one does, and STANDIN says which one it
# plays. At start it touches what the real program touches and exits non-zero with the real
# program's error text when it cannot (tests/images/README.md names the upstream files):
#   odoo         writes a session under /var/lib/odoo/sessions, lists /mnt/extra-addons
#   code-server  writes into /home/coder/project
# Then it serves HTTP with busybox httpd and traps SIGTERM like app-entrypoint.sh:
# APP_PORT (default 8069), TERM_DELAY, IGNORE_TERM=1, AUTH_PASSWORD (basic auth, user coder).
# With arguments it runs them instead, as image entrypoints do (the init_command uses this).
if [ $# -gt 0 ]; then
    exec "$@"
fi

denied() { # path: Python's text for EACCES, as Odoo's traceback ends
    echo "PermissionError: [Errno 13] Permission denied: '$1'" >&2
    exit 1
}

case "${STANDIN:-}" in
odoo)
    # odoo/tools/config.py session_dir: makedirs(data_dir/sessions, 0o700), then the store
    # writes one file per session.
    sessions=/var/lib/odoo/sessions
    [ -d "$sessions" ] || mkdir -m 700 "$sessions" 2>/dev/null || denied "$sessions"
    [ -w "$sessions" ] && [ -x "$sessions" ] || denied "$sessions"
    session="$sessions/standin-$$.sess"
    (echo '{}' > "$session") 2>/dev/null || denied "$session"
    ls /mnt/extra-addons >/dev/null 2>&1 || denied /mnt/extra-addons
    ;;
code-server)
    project=/home/coder/project
    probe="$project/.standin-$$"
    if ! touch "$probe" 2>/dev/null; then
        echo "EACCES: permission denied, open '$probe'" >&2
        exit 1
    fi
    rm -f "$probe"
    ;;
*)
    echo "standin: STANDIN must be odoo or code-server" >&2
    exit 2
    ;;
esac

PORT="${APP_PORT:-8069}"
www=/tmp/www
mkdir -p "$www/cgi-bin"
printf 'stagelet test app %s\n' "${APP_ID:-$HOSTNAME}" > "$www/index.html"
cat > "$www/cgi-bin/env" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'host=%s\nxff=%s\nproto=%s\nreal_ip=%s\nupgrade=%s\nuid=%s\n' "$HTTP_HOST" "$HTTP_X_FORWARDED_FOR" "$HTTP_X_FORWARDED_PROTO" "$HTTP_X_REAL_IP" "$HTTP_UPGRADE" "$(id -u)"
CGI
chmod +x "$www/cgi-bin/env"
conf=/dev/null
if [ -n "${AUTH_PASSWORD:-}" ]; then
    conf=/tmp/httpd.conf
    printf '/:coder:%s\n' "$AUTH_PASSWORD" > "$conf"
    chmod 600 "$conf"
fi
echo "app: starting on port $PORT as uid $(id -u)"
httpd -f -p "$PORT" -h "$www" -c "$conf" &
child=$!
on_term() {
    echo "app: got SIGTERM"
    if [ "${IGNORE_TERM:-0}" = 1 ]; then
        echo "app: ignoring SIGTERM"
        return
    fi
    sleep "${TERM_DELAY:-0}"
    kill "$child" 2>/dev/null
    echo "app: exiting after SIGTERM"
    exit 0
}
trap on_term TERM
trap 'echo "app: got SIGINT"; kill "$child"; exit 0' INT
while kill -0 "$child" 2>/dev/null; do
    wait "$child"
done
echo "app: httpd ended"
exit 1
