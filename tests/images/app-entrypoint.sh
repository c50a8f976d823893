#!/bin/sh
# The app stand-in: serves HTTP with busybox httpd and traps SIGTERM so a grace period can be
# observed. APP_PORT (default 8069) is the port; TERM_DELAY seconds pass between SIGTERM and
# exit; IGNORE_TERM=1 ignores SIGTERM entirely (only SIGKILL stops it).
# With arguments it runs them instead, as image entrypoints do (the init_command uses this).
# AUTH_PASSWORD set: every path asks for HTTP basic auth as user "coder" (the code-server
# stand-in: the agent hands the password in through the profile's password_env).
if [ $# -gt 0 ]; then
    exec "$@"
fi
PORT="${APP_PORT:-8069}"
mkdir -p /www/cgi-bin
printf 'stagelet test app %s\n' "${APP_ID:-$HOSTNAME}" > /www/index.html
cat > /www/cgi-bin/env <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'host=%s\nxff=%s\nproto=%s\nreal_ip=%s\nupgrade=%s\n' "$HTTP_HOST" "$HTTP_X_FORWARDED_FOR" "$HTTP_X_FORWARDED_PROTO" "$HTTP_X_REAL_IP" "$HTTP_UPGRADE"
CGI
chmod +x /www/cgi-bin/env
conf=/dev/null
if [ -n "${AUTH_PASSWORD:-}" ]; then
    conf=/etc/httpd.conf
    printf '/:coder:%s\n' "$AUTH_PASSWORD" > "$conf"
    chmod 600 "$conf"
fi
echo "app: starting on port $PORT"
httpd -f -p "$PORT" -h /www -c "$conf" &
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
