#!/bin/sh
# Builds stagelet-test/odoo:1, the Odoo 17.0 stand-in (see README.md), without any registry: a minimal
# Debian 12 root made by mmdebstrap with python3, psycopg2 and passlib, plus the files in odoo/, then
# `docker import`. Rebuilt only when this script, those files or the mirror change. Needs root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
IMAGE=stagelet-test/odoo:1
SUITE=bookworm
PACKAGES=python3,python3-psycopg2,python3-passlib

# The Debian mirror apt uses here (deb822 "URIs:" or one-line "deb URI"), unless DEBIAN_MIRROR is set.
mirror=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -n -e 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\/\{0,1\}\)$/\1/p' \
        -e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\(http[^[:space:]]*\/debian\/\{0,1\}\)[[:space:]].*/\2/p' |
    head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}

fp=$({ cat "$0"; echo "$mirror $SUITE $PACKAGES"; find "$here/odoo" -type f ! -path '*/__pycache__/*' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{ index .Config.Labels "io.stagelet.test.fingerprint" }}' "$IMAGE" 2>/dev/null || true)" = "$fp" ]; then
    echo "$IMAGE is up to date"
    exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends mmdebstrap || { apt-get update && apt-get install -y --no-install-recommends mmdebstrap; }
fi

start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir "$root"
# The merged-usr hook keeps usrmerge (and the perl it pulls in) out of the root.
mmdebstrap --quiet --variant=essential --mode=root --include="$PACKAGES" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$SUITE" "$root" "$mirror" > "$work/mmdebstrap.log" 2>&1 || { cat "$work/mmdebstrap.log" >&2; exit 1; }
rm -rf "$root"/var/cache/debconf/*-old "$root"/var/lib/apt/lists/* "$root"/var/log/*.log

# The official image's layout: user odoo 101:101 (home /var/lib/odoo), /etc/odoo/odoo.conf owned by
# odoo, /var/lib/odoo and /mnt/extra-addons owned by odoo, /entrypoint.sh, wait-for-psql.py.
echo 'odoo:x:101:101:Odoo:/var/lib/odoo:/usr/sbin/nologin' >> "$root/etc/passwd"
echo 'odoo:x:101:' >> "$root/etc/group"
echo 'odoo:*:19000:0:99999:7:::' >> "$root/etc/shadow"
pkgdir="$root/usr/lib/python3/dist-packages/odoo"
cp -r "$here/odoo/odoo" "$pkgdir"
rm -rf "$pkgdir"/__pycache__
python3 -m compileall -q "$pkgdir" >/dev/null 2>&1 || true
install -m 755 "$here/odoo/odoo-bin" "$root/usr/bin/odoo"
install -m 755 "$here/odoo/entrypoint.sh" "$root/entrypoint.sh"
install -m 755 "$here/odoo/wait-for-psql.py" "$root/usr/local/bin/wait-for-psql.py"
install -d -m 755 "$root/etc/odoo"
install -m 644 -o 101 -g 101 "$here/odoo/odoo.conf" "$root/etc/odoo/odoo.conf"
install -d -m 755 -o 101 -g 101 "$root/var/lib/odoo" "$root/mnt/extra-addons"

tar -C "$root" -c . | docker import \
    --change 'USER odoo' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV ODOO_RC=/etc/odoo/odoo.conf' \
    --change 'VOLUME ["/var/lib/odoo", "/mnt/extra-addons"]' \
    --change 'EXPOSE 8069 8071 8072' \
    --change 'ENTRYPOINT ["/entrypoint.sh"]' \
    --change 'CMD ["odoo"]' \
    --change "LABEL io.stagelet.test.fingerprint=$fp" \
    - "$IMAGE" >/dev/null
echo "built $IMAGE ($(du -sh "$root" | cut -f1) root, $(( $(date +%s) - start ))s)"
