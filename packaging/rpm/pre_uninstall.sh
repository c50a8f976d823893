if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then systemctl stop stagelet.service stagelet.socket || true; fi
    systemctl disable stagelet.service stagelet.socket >/dev/null 2>&1 || true
fi
