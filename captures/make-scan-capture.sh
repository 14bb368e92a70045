#!/usr/bin/env bash
# Record scan.pcap: swaks sends three messages (a normal one, an obvious spam
# message, one with the EICAR test file attached) to an SMTP server from the
# smtp-server package, in two network namespaces that this script builds and
# removes. The virus and spam scanning tests read the capture.
#
# Usage: sudo captures/make-scan-capture.sh [OUTDIR]   (default: the captures/ folder)
#
# Needs root, iproute2, ethtool, swaks, tcpdump and node with the repository's
# node_modules. Writes OUTDIR/scan.pcap and OUTDIR/scan-logs/ (the swaks
# transcripts and the server's log of each message's size and SHA-256).
#
#   mt8-ws  10.88.0.21 f8:bc:12:00:08:21 (Dell)  workstation, EHLO ws-alice.corp.example
#   mt8-mx  10.88.0.25 3c:ec:ef:00:08:25 (Supermicro) smtp-server, relay.corp.example
#
# tcpdump records on the server's interface.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir="$(realpath -m "${1:-$here}")"
work="$(mktemp -d /tmp/mt8-scan-capture.XXXXXX)"
namespaces=(mt8-ws mt8-mx)
pids=()

log() { printf '==> %s\n' "$*" >&2; }

cleanup() {
  local pid ns
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if [[ $EUID -ne 0 ]]; then
  echo "make-scan-capture.sh: must run as root (it creates network namespaces)" >&2
  exit 1
fi
for tool in ip ethtool swaks tcpdump node; do
  command -v "$tool" >/dev/null || { echo "make-scan-capture.sh: $tool not found; run ./install.sh" >&2; exit 1; }
done

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

log "building namespaces ${namespaces[*]}"
for ns in "${namespaces[@]}"; do
  ip netns add "$ns"
  in_ns "$ns" ip link set lo up
  in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add eth0 netns mt8-ws address f8:bc:12:00:08:21 type veth peer name eth0 netns mt8-mx address 3c:ec:ef:00:08:25
in_ns mt8-ws ip addr add 10.88.0.21/24 dev eth0
in_ns mt8-mx ip addr add 10.88.0.25/24 dev eth0
for ns in "${namespaces[@]}"; do
  in_ns "$ns" ip link set eth0 up
  # Offloads off: MTU-sized frames with correct checksums, as a mirror port shows them.
  in_ns "$ns" ethtool -K eth0 tx off tso off gso off gro off >/dev/null 2>&1 || true
done

node "$here/make-scan-messages.mjs" "$work/msgs"
mkdir -p "$work/logs"

log "starting smtp-server on 10.88.0.25:25"
in_ns mt8-mx node "$here/scan-server.mjs" >"$work/logs/server.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do grep -q listening "$work/logs/server.log" && break; sleep 0.1; done

ip netns exec mt8-mx tcpdump -i eth0 -s 0 -U -n -w "$work/scan.pcap" 2>"$work/tcpdump.log" &
pids+=("$!")
for _ in $(seq 50); do grep -q listening "$work/tcpdump.log" && break; sleep 0.1; done

send() {
  local name="$1" from="$2" to="$3" ehlo="$4"
  log "swaks $name"
  # swaks ends DATA with CRLF "." CRLF itself, so the message's last CRLF is
  # cut off here: the bytes on the wire are then exactly the .eml file.
  head -c -2 "$work/msgs/$name.eml" >"$work/msgs/$name.swaks"
  in_ns mt8-ws swaks --suppress-data --data "@$work/msgs/$name.swaks" --server 10.88.0.25 --port 25 \
    --ehlo "$ehlo" --from "$from" --to "$to" >"$work/logs/$name.txt" 2>&1
}

send scan-1-normal alice@corp.example carol@partner.example ws-alice.corp.example
send scan-2-spam alice@corp.example carol@partner.example ws-alice.corp.example
send scan-3-eicar alice@corp.example dave@partner.example ws-alice.corp.example

sleep 1
kill -INT "${pids[-1]}"
wait "${pids[-1]}" || true
unset 'pids[-1]'
cat "$work/tcpdump.log" >&2
mkdir -p "$outdir/scan-logs"
cp "$work/scan.pcap" "$outdir/scan.pcap"
cp "$work/logs/"*.txt "$work/logs/server.log" "$outdir/scan-logs/"
(cd "$work/msgs" && sha256sum ./*.eml && wc -c ./*.eml) >"$outdir/scan-logs/messages.txt"
log "wrote $outdir/scan.pcap"
