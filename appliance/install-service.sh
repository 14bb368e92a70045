#!/usr/bin/env bash
# Install mailtap as a systemd service: the mailtap system user, a copy of the built
# application in /usr/local/lib/mailtap, the mailtap command, /etc/mailtap/mailtap.yaml (only
# when absent), and the unit; then enable and start it when systemd is running.
# `./install.sh --service` runs this after building; it can also run on its own.
set -euo pipefail

usage() {
  cat <<'HELP'
Usage: appliance/install-service.sh [--dest DIR] [--bin-dir DIR] [--no-enable]

Installs the built mailtap (dist/ and node_modules/ of this repository) as a systemd service
that runs as the unprivileged user "mailtap" with CAP_NET_RAW and CAP_NET_ADMIN.

  --dest DIR     install under DIR instead of / (a staging tree: no user is created and
                 systemctl is not run)
  --bin-dir DIR  where the mailtap command goes (default: /usr/local/bin)
  --no-enable    install only; do not run systemctl enable --now
  -h, --help     show this help

An existing /etc/mailtap/mailtap.yaml or mailtap.env is never overwritten.
HELP
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest=""
bin_dir=/usr/local/bin
enable=1

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest)
      [[ $# -ge 2 ]] || { echo "install-service.sh: --dest needs a directory" >&2; exit 2; }
      dest="${2%/}"
      shift
      ;;
    --bin-dir)
      [[ $# -ge 2 ]] || { echo "install-service.sh: --bin-dir needs a directory" >&2; exit 2; }
      bin_dir="$2"
      shift
      ;;
    --no-enable) enable=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-service.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

fail() { echo "install-service.sh: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || fail "must run as root (it creates a system user and writes to /etc)"
[[ -f "$repo/dist/cli/main.js" ]] || fail "$repo/dist/cli/main.js is missing: run npm run build first"
[[ -d "$repo/node_modules" ]] || fail "$repo/node_modules is missing: run npm ci first"

app_dir=/usr/local/lib/mailtap
config_dir=/etc/mailtap
unit_dir=/etc/systemd/system

echo "==> user mailtap"
if [[ -n "$dest" ]]; then
  echo "staging tree $dest: no user created; the files are owned by root"
  group=root
elif id -u mailtap >/dev/null 2>&1; then
  echo "user mailtap exists"
  group=mailtap
else
  useradd --system --user-group --home-dir /var/lib/mailtap --no-create-home \
    --shell /usr/sbin/nologin --comment "mailtap sensor" mailtap
  echo "created system user and group mailtap"
  group=mailtap
fi

# The service cannot read a clone under /root or /home (ProtectHome=yes, and those are
# private to their owners), so it runs a copy. Symlinks are followed, because node_modules may
# be a link to another checkout.
echo "==> application in $app_dir"
mkdir -p "$dest$app_dir"
rm -rf "$dest$app_dir/dist" "$dest$app_dir/node_modules" "$dest$app_dir/build"
cp -a "$repo/dist" "$dest$app_dir/dist"
cp -aL "$repo/node_modules" "$dest$app_dir/node_modules"
# The native module that reads the capture sockets' drop counters (built by npm ci).
if [[ -f "$repo/build/Release/capture_native.node" ]]; then
  mkdir -p "$dest$app_dir/build/Release"
  cp "$repo/build/Release/capture_native.node" "$dest$app_dir/build/Release/"
else
  echo "warning: build/Release/capture_native.node is missing (npm ci builds it): the service will not report kernel drops" >&2
fi
cp "$repo/package.json" "$repo/README.md" "$dest$app_dir/"
chmod -R u=rwX,go=rX "$dest$app_dir"
echo "copied dist/, node_modules/, build/Release/capture_native.node, package.json and README.md"

echo "==> command $bin_dir/mailtap"
mkdir -p "$dest$bin_dir"
printf '#!/bin/sh\nexec node %q "$@"\n' "$app_dir/dist/cli/main.js" >"$dest$bin_dir/mailtap"
chmod 755 "$dest$bin_dir/mailtap"
echo "$bin_dir/mailtap runs node $app_dir/dist/cli/main.js"

echo "==> configuration in $config_dir"
mkdir -p "$dest$config_dir"
if [[ -e "$dest$config_dir/mailtap.yaml" ]]; then
  echo "kept the existing $config_dir/mailtap.yaml"
else
  install -m 0640 -g "$group" "$repo/appliance/mailtap.yaml" "$dest$config_dir/mailtap.yaml"
  echo "installed $config_dir/mailtap.yaml with the defaults: set capture.interfaces to the mirror port"
fi
if [[ -e "$dest$config_dir/mailtap.env" ]]; then
  echo "kept the existing $config_dir/mailtap.env"
else
  printf '%s\n' '# Extra options for `mailtap live`, for example MAILTAP_OPTIONS="-i eth1".' 'MAILTAP_OPTIONS=' >"$dest$config_dir/mailtap.env"
  chmod 0640 "$dest$config_dir/mailtap.env"
  chgrp "$group" "$dest$config_dir/mailtap.env"
  echo "installed $config_dir/mailtap.env"
fi

echo "==> unit $unit_dir/mailtap.service"
mkdir -p "$dest$unit_dir"
sed "s#/usr/local/bin/mailtap #$bin_dir/mailtap #" "$repo/appliance/mailtap.service" >"$dest$unit_dir/mailtap.service"
chmod 0644 "$dest$unit_dir/mailtap.service"

if [[ $enable -eq 0 ]]; then
  echo "not enabled (--no-enable)"
elif [[ ! -d /run/systemd/system ]]; then
  # Containers and CI runners often have no systemd as PID 1; systemctl would fail there.
  echo "systemd is not running on this machine (no /run/systemd/system): the unit is installed"
  echo "but not enabled. On a host booted with systemd run: systemctl enable --now mailtap"
elif [[ -n "$dest" ]]; then
  echo "not enabled: the unit went to the staging tree $dest"
else
  systemctl daemon-reload
  systemctl enable --now mailtap.service
  echo "enabled and started mailtap.service; check it with: systemctl status mailtap; mailtap status"
fi
