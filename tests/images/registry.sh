#!/bin/sh
# Starts the test registries when they do not answer: Debian's docker-registry (the CNCF
# distribution registry) on 127.0.0.1:5000, open, and on 127.0.0.1:5001 behind htpasswd
# (user `stagelet`, password in $REG/password, mode 0600). The engine allows plain HTTP to
# 127.0.0.0/8 registries. Logs: $REG/<port>.log (the pull tests count manifest requests there).
set -eu
REG=/var/lib/stagelet-test-registry
mkdir -p "$REG"
chmod 700 "$REG"
if [ ! -s "$REG/password" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$REG/password")
fi
# -i reads the password from stdin: never on a command line other users can see in ps.
if [ ! -s "$REG/htpasswd" ] || ! htpasswd -iv "$REG/htpasswd" stagelet < "$REG/password" >/dev/null 2>&1; then
    htpasswd -iBc "$REG/htpasswd" stagelet < "$REG/password" 2>/dev/null
fi
for port in 5000 5001; do
    if curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then
        continue
    fi
    auth=""
    if [ "$port" = 5001 ]; then
        auth="auth:
  htpasswd:
    realm: stagelet-test
    path: $REG/htpasswd"
    fi
    cat > "$REG/$port.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $REG/$port
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$auth
YML
    (setsid docker-registry serve "$REG/$port.yml" >>"$REG/$port.log" 2>&1 &)
    for _ in $(seq 40); do
        curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break
        sleep 0.25
    done
    curl -s -o /dev/null "http://127.0.0.1:$port/v2/" || { tail -5 "$REG/$port.log"; echo "registry on :$port did not start" >&2; exit 1; }
    echo "registry on 127.0.0.1:$port"
done
