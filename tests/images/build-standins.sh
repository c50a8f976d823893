#!/bin/sh
# Builds the stand-ins of the official images (issue 15), beside build.sh's images and under
# new tags, so images other tests are using are never rebuilt in place:
#   stagelet-test/app:2          uid 101:101 like odoo:17.0, needs its data and addons dirs
#   stagelet-test/code-server:1  uid 1000:1000 like codercom/code-server, needs its project dir
# The db stand-in is build.sh's stagelet-test/postgres:1: it already starts as root, chowns
# the data directory to 999 and drops privileges, as the official entrypoint does.
# An image whose inputs did not change is not rebuilt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

fingerprint() {
    { cat "$here/build-standins.sh" "$here/standin-entrypoint.sh"; echo "$*"; dpkg-query -W busybox-static 2>/dev/null; } | sha256sum | cut -c1-16
}
current() {
    docker image inspect -f '{{ index .Config.Labels "io.stagelet.test.fingerprint" }}' "$1" 2>/dev/null || true
}

# standin image kind uid home dir...: a busybox root whose user `kind` is uid:uid and owns
# `home` and the image's own copies of the mounted directories.
standin() {
    image=$1 kind=$2 uid=$3 user=$4 home=$5; shift 5
    fp=$(fingerprint "$image" "$kind" "$uid" "$user" "$home" "$@")
    if [ "$(current "$image")" = "$fp" ]; then
        echo "$image is up to date"
        return
    fi
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/run" "$root/var" "$root$home"
    ln -s ../run "$root/var/run"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for app in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$app" ] || ln -s busybox "$root/bin/$app"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n%s:x:%s:%s::%s:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' "$user" "$uid" "$uid" "$home" > "$root/etc/passwd"
    printf 'root:x:0:\n%s:x:%s:\nnogroup:x:65534:\n' "$user" "$uid" > "$root/etc/group"
    for d in "$@"; do
        mkdir -p "$root$d"
    done
    chown "$uid:$uid" "$root$home"
    for d in "$@"; do
        chown "$uid:$uid" "$root$d"
    done
    install -m 755 "$here/standin-entrypoint.sh" "$root/entrypoint.sh"
    tar -C "$root" -c . | docker import \
        --change 'ENTRYPOINT ["/entrypoint.sh"]' --change "LABEL io.stagelet.test.fingerprint=$fp" \
        --change 'ENV PATH=/bin' --change "ENV STANDIN=$kind" --change "ENV HOME=$home" \
        --change "USER $uid:$uid" --change "WORKDIR $home" --change 'EXPOSE 8069' \
        - "$image" >/dev/null
    echo "built $image ($(du -sh "$root" | cut -f1))"
    rm -rf "$root"
}

standin stagelet-test/app:2 odoo 101 odoo /var/lib/odoo /var/lib/odoo /mnt/extra-addons
standin stagelet-test/code-server:1 code-server 1000 coder /home/coder /home/coder/project
