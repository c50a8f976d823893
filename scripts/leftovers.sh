#!/usr/bin/env bash
# What the tests left behind: nginx masters running a config under the temp directory, orphaned
# nginx workers, stagelet daemons and test backends (busybox httpd) on a temp directory, and
# containers and networks named `stl-p<pid>s...` or labelled `io.stagelet.test.p<pid>s...`
# (the harness's naming, tests/common/mod.rs). Something is left over only when no running test
# binary (`.../deps/<name>-<hash>`) owns it: another session's tests may be running now (a
# container or network that names no test process counts only when no test binary runs).
# Prints what it finds and exits 1 if anything; 0 when clean.
#
#   scripts/leftovers.sh [--since EPOCH]   only what was started at or after EPOCH
set -euo pipefail

since=0
if [ "${1:-}" = "--since" ]; then since=$2; fi
tmp=${TMPDIR:-/tmp}
tmp=${tmp%/}
found=0

report() {
    echo "leftover: $*" >&2
    found=1
}

# A test binary is an ELF under a cargo target's deps directory.
is_test_binary() {
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
    [[ $exe == */deps/* ]]
}

# Whether a running test binary is `pid` or one of its ancestors.
owned_by_test() {
    local pid=$1 stat
    while [ "$pid" -gt 1 ]; do
        is_test_binary "$pid" && return 0
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
        stat=${stat##*) }
        pid=$(echo "$stat" | cut -d' ' -f2)
    done
    return 1
}

ticks=$(getconf CLK_TCK)
btime=$(awk '/^btime/ {print $2}' /proc/stat)
started() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    echo $((btime + $(echo "$stat" | cut -d' ' -f20) / ticks))
}

is_nginx_master() {
    { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -q '^nginx: master process'
}

for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    args=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
    what=""
    case $args in
        "nginx: master process "*" $tmp/"*) what="nginx master on a temp config" ;;
        "nginx: worker process"* | "nginx: cache "*)
            stat=$({ cat "$dir/stat"; } 2>/dev/null) || continue
            stat=${stat##*) }
            is_nginx_master "$(echo "$stat" | cut -d' ' -f2)" || what="nginx worker without its master"
            ;;
        *"stagelet serve "*"--config $tmp/"*) what="stagelet daemon on a temp config" ;;
        "busybox httpd "*" $tmp/"*) what="test backend" ;;
    esac
    [ -n "$what" ] || continue
    owned_by_test "$pid" && continue
    [ "$(started "$pid")" -ge "$since" ] || continue
    report "process $pid ($what): $args"
done

# The test process that made a container or network, from its name or a label key.
owner() {
    sed -nE 's/.*(^|[ ,=])(stl-p|io\.stagelet\.test\.p)([0-9]+)s.*/\3/p' <<<"$1" | head -1
}

# Docker resources of `kind` (container, network) that no running test owns.
docker_leftovers() {
    local kind=$1 ls
    if [ "$kind" = container ]; then
        ls=(docker ps -a --format '{{.ID}}	{{.Names}}	{{.Labels}}')
    else
        ls=(docker network ls --format '{{.ID}}	{{.Name}}	{{.Labels}}')
    fi
    "${ls[@]}" --no-trunc 2>/dev/null |
        while IFS=$'\t' read -r id name labels; do
            case "$name $labels" in
                stl-p* | *io.stagelet.test.*) ;;
                *) continue ;;
            esac
            pid=$(owner "$name $labels")
            if [ -n "$pid" ]; then
                is_test_binary "$pid" && continue
            elif [ "$tests_running" = 1 ]; then
                # Named for no test process: it may belong to one of those running now.
                continue
            fi
            created=$(docker "$kind" inspect -f '{{.Created}}' "$id" 2>/dev/null || true)
            created=$(date -d "$created" +%s 2>/dev/null || echo 0)
            [ "$created" -ge "$since" ] || continue
            echo "$kind ${id:0:12} $name"
        done
}

tests_running=0
for dir in /proc/[0-9]*; do
    if is_test_binary "${dir#/proc/}"; then
        tests_running=1
        break
    fi
done

if docker version >/dev/null 2>&1; then
    for kind in container network; do
        while read -r line; do
            [ -n "$line" ] && report "$line"
        done < <(docker_leftovers "$kind")
    done
fi

if [ "$found" = 1 ]; then
    echo "the tests left the above behind" >&2
    exit 1
fi
echo "no leftovers from the tests"
