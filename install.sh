#!/usr/bin/env bash
# Install what mailtap and its tests need on Debian 12, build mailtap and put
# the `mailtap` command on PATH. Safe to run again: it skips what is in place.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./install.sh [--no-apt] [--bin-dir DIR] [--service]

Installs the Debian packages mailtap and its tests need, runs `npm ci` and
`npm run build`, and installs DIR/mailtap, which runs dist/cli/main.js.

  --no-apt        skip the Debian packages (only check Node.js, build and link)
  --bin-dir DIR   where to install the mailtap command (default: /usr/local/bin)
  --service       then install the systemd service with appliance/install-service.sh: the
                  mailtap user, a copy of the build in /usr/local/lib/mailtap (the command
                  then runs that copy), /etc/mailtap/mailtap.yaml unless it exists, and the
                  unit, enabled and started when systemd is running
  -h, --help      show this help

Runs as root, or as a user with sudo for apt-get and the command.
EOF
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
use_apt=1
service=0
bin_dir=/usr/local/bin

while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-apt) use_apt=0 ;;
    --service) service=1 ;;
    --bin-dir)
      [[ $# -ge 2 ]] || { echo "install.sh: --bin-dir needs a directory" >&2; exit 2; }
      bin_dir="$2"
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "install.sh: $*" >&2; exit 1; }

if [[ $EUID -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  fail "must run as root, or with sudo available"
fi

# build-essential and python3: node-gyp builds the native `cap` module
# against libpcap-dev. The rest are the tools the tests and capture scripts run.
packages=(
  build-essential python3 libpcap-dev
  tcpdump tshark tcpflow
  postfix sasl2-bin libsasl2-modules swaks libnet-ssleay-perl
  iproute2 ethtool openssl ca-certificates dnsmasq-base udhcpc
  tmux time
  tcpreplay clamav-daemon rspamd
)

apt_log=/tmp/mailtap-install-apt.log

apt_get() {
  if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y "$@" >>"$apt_log" 2>&1; then
    tail -n 30 "$apt_log" >&2
    fail "apt-get $* failed; the full output is in $apt_log"
  fi
}

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

if [[ $use_apt -eq 1 ]]; then
  step "Debian packages"
  # Preseed the two packages that would otherwise prompt: Postfix gets no
  # system configuration, and dumpcap is not made setuid root.
  "${as_root[@]}" debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
wireshark-common wireshark-common/install-setuid boolean false
EOF
  missing=()
  for package in "${packages[@]}"; do
    is_installed "$package" || missing+=("$package")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "all ${#packages[@]} packages are installed"
  else
    echo "installing: ${missing[*]} (log: $apt_log)"
    : >"$apt_log"
    apt_get update
    apt_get install --no-install-recommends "${missing[@]}"
  fi

  # The tests start their own Postfix instances, each with its own config
  # directory, so the system instance must not hold port 25.
  step "stopping the system Postfix instance"
  if [[ -d /run/systemd/system ]]; then
    "${as_root[@]}" systemctl disable --now postfix >/dev/null 2>&1 || true
  else
    "${as_root[@]}" update-rc.d postfix disable >/dev/null 2>&1 || true
  fi
  if [[ -f /etc/postfix/main.cf ]] && "${as_root[@]}" postfix status >/dev/null 2>&1; then
    "${as_root[@]}" postfix stop
  fi
  echo "system Postfix is stopped and disabled"
fi

step "Node.js"
if ! command -v node >/dev/null; then
  [[ $use_apt -eq 1 ]] || fail "node not found; install Node.js 20 or later, or run without --no-apt"
  echo "node not found, installing Debian's nodejs and npm"
  apt_get install --no-install-recommends nodejs npm
fi
node_version="$(node -v)"
node_major="${node_version#v}"
node_major="${node_major%%.*}"
if [[ $node_major -lt 20 ]]; then
  # Debian 12's own nodejs package is version 18.
  fail "Node.js $node_version found, mailtap needs 20 or later; install it from NodeSource or nodejs.org"
fi
echo "node $node_version, npm $(npm -v)"

step "npm ci"
# package.json lists in allowScripts the dependencies whose install scripts
# must run: esbuild (via tsx) and the native `cap` module.
cd "$repo"
npm ci --no-audit --no-fund

step "npm run build"
npm run build

step "installing $bin_dir/mailtap"
main="$repo/dist/cli/main.js"
[[ -f "$main" ]] || echo "warning: $main does not exist yet, so mailtap fails until it is built" >&2
# A wrapper rather than a symlink: tsc writes main.js without the execute
# bit, and a later clean build would drop a chmod made here.
wrapper="$(mktemp)"
printf '#!/bin/sh\nexec node %q "$@"\n' "$main" >"$wrapper"
chmod 755 "$wrapper"
"${as_root[@]}" mkdir -p "$bin_dir"
"${as_root[@]}" rm -f "$bin_dir/mailtap"
"${as_root[@]}" cp "$wrapper" "$bin_dir/mailtap"
rm -f "$wrapper"
echo "$bin_dir/mailtap runs node $main"

if [[ $service -eq 1 ]]; then
  step "systemd service"
  "${as_root[@]}" "$repo/appliance/install-service.sh" --bin-dir "$bin_dir"
fi

step "done"
