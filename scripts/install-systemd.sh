#!/usr/bin/env bash
# Installs hearth as a systemd service: the built checkout in /opt/hearth, the
# units in /etc/systemd/system, then enables and starts hearth.service.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /run/systemd/system ]; then
  echo "install-systemd: systemd is not running here (PID 1 is $(cat /proc/1/comm)); nothing installed" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-systemd: run as root (sudo make install-systemd)" >&2
  exit 1
fi
[ -f dist/daemon/main.js ] || { echo "install-systemd: build first (make build)" >&2; exit 1; }
install -d -m 0755 /opt/hearth /etc/hearth
cp -a package.json package-lock.json dist runtimes build node_modules README.md /opt/hearth/
[ -f /etc/hearth/hearth.env ] || printf '# hearth settings, see /opt/hearth/README.md\n#HTTP_HOST=0.0.0.0\n#AUTH=on\n' > /etc/hearth/hearth.env
install -m 0644 systemd/hearth.slice systemd/hearth.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now hearth.service
systemctl --no-pager status hearth.service | head -5
