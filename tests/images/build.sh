#!/bin/sh
# Builds the local test images without any registry: `docker import` of root filesystems made
# from Debian packages. An image whose inputs did not change is not rebuilt.
#   stagelet-test/app:1       busybox httpd that traps SIGTERM
#   stagelet-test/postgres:1  the host's PostgreSQL, initialised like the official image
set -eu
here=$(cd "$(dirname "$0")" && pwd)
APP_IMAGE=stagelet-test/app:1
PG_IMAGE=stagelet-test/postgres:1
pgver=$(ls /usr/lib/postgresql | sort -n | tail -1)

# Rebuilds only when the recipe or the packages changed.
fingerprint() {
    { cat "$here/build.sh" "$@"; dpkg-query -W busybox-static "postgresql-$pgver" 2>/dev/null; } | sha256sum | cut -c1-16
}
current() {
    docker image inspect -f '{{ index .Config.Labels "io.stagelet.test.fingerprint" }}' "$1" 2>/dev/null || true
}

add_libs() { # root binary...
    root=$1; shift
    for lib in $(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

base_root() { # root
    root=$1
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/run" "$root/var"
    ln -s ../run "$root/var/run"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for app in $("$root/bin/busybox" --list); do
        [ -e "$root/bin/$app" ] || ln -s busybox "$root/bin/$app"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\npostgres:x:999:\nnogroup:x:65534:\n' > "$root/etc/group"
}

import() { # root image fingerprint entrypoint [env...]
    root=$1 image=$2 fp=$3 entry=$4; shift 4
    set -- --change "ENTRYPOINT [\"$entry\"]" --change "LABEL io.stagelet.test.fingerprint=$fp" "$@"
    tar -C "$root" -c . | docker import "$@" - "$image" >/dev/null
    echo "built $image ($(du -sh "$root" | cut -f1))"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fp=$(fingerprint "$here/app-entrypoint.sh")
if [ "$(current $APP_IMAGE)" != "$fp" ]; then
    root="$work/app"
    base_root "$root"
    install -m 755 "$here/app-entrypoint.sh" "$root/entrypoint.sh"
    import "$root" "$APP_IMAGE" "$fp" /entrypoint.sh --change 'ENV PATH=/bin' --change 'EXPOSE 8069'
else
    echo "$APP_IMAGE is up to date"
fi

fp=$(fingerprint "$here/postgres-entrypoint.sh")
if [ "$(current $PG_IMAGE)" != "$fp" ]; then
    root="$work/pg"
    base_root "$root"
    pgbin=/usr/lib/postgresql/$pgver/bin
    mkdir -p "$root/usr/lib/postgresql/$pgver" "$root/usr/share/postgresql" "$root/usr/share/zoneinfo" "$root/var/lib/postgresql" "$root/run/postgresql"
    cp -a "$pgbin" "$root/usr/lib/postgresql/$pgver/"
    # The JIT pulls in LLVM (hundreds of MB) and is optional: leave it out.
    mkdir -p "$root/usr/lib/postgresql/$pgver/lib"
    find "/usr/lib/postgresql/$pgver/lib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp -a {} "$root/usr/lib/postgresql/$pgver/lib/" \;
    cp -a "/usr/share/postgresql/$pgver" "$root/usr/share/postgresql/"
    cp -a /usr/share/zoneinfo/UTC /usr/share/zoneinfo/Etc "$root/usr/share/zoneinfo/" 2>/dev/null || true
    add_libs "$root" "$pgbin"/* "$root/usr/lib/postgresql/$pgver/lib"/*.so
    install -m 755 "$here/postgres-entrypoint.sh" "$root/entrypoint.sh"
    import "$root" "$PG_IMAGE" "$fp" /entrypoint.sh \
        --change "ENV PATH=$pgbin:/bin" --change "ENV PGBIN=$pgbin" --change 'ENV PGDATA=/var/lib/postgresql/data' \
        --change 'ENV TZ=UTC' --change 'EXPOSE 5432'
else
    echo "$PG_IMAGE is up to date"
fi
"$here/build-odoo.sh"
