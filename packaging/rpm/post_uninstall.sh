# rpm removes /etc/nginx/conf.d/stagelet.conf, which included the agent's global file.
if [ "$1" -eq 0 ]; then rm -rf /etc/nginx/stagelet/global; fi
if [ "$1" -eq 0 ] && [ -d /var/lib/stagelet ]; then
    echo "stagelet: customers' data and records remain in /var/lib/stagelet; remove it by hand once nobody needs it."
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
