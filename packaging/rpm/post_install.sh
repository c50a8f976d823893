getent group stagelet >/dev/null || groupadd --system stagelet
install -d -m 0750 -o root -g stagelet /var/lib/stagelet
install -d -m 0755 -o root -g root /etc/nginx/stagelet /etc/nginx/stagelet/global
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
if [ "$1" -eq 1 ]; then
    systemctl enable stagelet.service >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then systemctl start stagelet.service || true; fi
elif [ -d /run/systemd/system ]; then
    systemctl try-restart stagelet.service || true
fi
