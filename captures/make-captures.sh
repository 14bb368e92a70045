#!/usr/bin/env bash
# Record office.pcap and printer.pcap: real Postfix and swaks sessions in a
# lab network of network namespaces that this script builds and removes.
#
# Usage: sudo captures/make-captures.sh [OUTDIR]   (default: the captures/ folder)
#
# Needs root, iproute2, ethtool, postfix, sasl2-bin (saslpasswd2),
# libsasl2-modules, swaks, tcpdump, openssl and python3 (install.sh installs them).
# It writes OUTDIR/office.pcap, OUTDIR/printer.pcap and the evidence that
# captures/README.md is written from: OUTDIR/logs/{office,printer}/ with each
# swaks transcript and each Postfix instance's log.
#
# Lab network (all inside namespaces, nothing in the root namespace):
#
#   mt-ws      10.99.0.21 f8:bc:12:00:00:21 (Dell)     office workstation
#   mt-printer 10.99.0.31 30:05:5c:00:00:31 (Brother)  scan-to-email printer
#   mt-relay   10.99.0.10 3c:ec:ef:00:00:10 (Supermicro) Postfix relay, mail.corp.example
#   mt-gw      10.99.0.1  74:ac:b9:00:00:01 (Ubiquiti) router to the "internet" side
#                10.99.1.1  74:ac:b9:00:01:01
#   mt-mx      10.99.1.25 00:16:3e:00:01:25 (Xensource) Postfix, mx.partner.example
#
# The LAN hosts hang on bridge mt-br0 in namespace mt-sw, and tcpdump records
# on that bridge, like a mirror port on the office switch. The MX is reached
# only through mt-gw, so the capture shows its traffic with the router's MAC.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir="$(realpath -m "${1:-$here}")"
work="$(mktemp -d /tmp/mt-captures.XXXXXX)"
chmod 755 "$work"
namespaces=(mt-sw mt-gw mt-relay mt-ws mt-printer mt-mx)
pids=()

log() { printf '==> %s\n' "$*" >&2; }

cleanup() {
  local pid ns
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ns in relay mx; do
    [[ -d "$work/$ns" ]] && ip netns exec "mt-$ns" postfix -c "$work/$ns" stop >/dev/null 2>&1 || true
  done
  for ns in "${namespaces[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$work"
}
trap cleanup EXIT

if [[ $EUID -ne 0 ]]; then
  echo "make-captures.sh: must run as root (it creates network namespaces)" >&2
  exit 1
fi
for tool in ip ethtool postfix postconf saslpasswd2 swaks tcpdump openssl python3; do
  command -v "$tool" >/dev/null || { echo "make-captures.sh: $tool not found; run ./install.sh" >&2; exit 1; }
done
for ns in "${namespaces[@]}"; do
  if ip netns list | grep -qw "^$ns"; then
    echo "make-captures.sh: namespace $ns exists; is another run active? Remove it with: ip netns del $ns" >&2
    exit 1
  fi
done

# ---------------------------------------------------------------- network

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

make_ns() {
  local ns="$1"
  ip netns add "$ns"
  # `ip netns exec` mounts these over /etc: no resolver is reachable, so any
  # DNS look-up fails at once instead of sending packets.
  mkdir -p "/etc/netns/$ns"
  echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
  cat >"/etc/netns/$ns/hosts" <<'EOF'
127.0.0.1 localhost
10.99.0.10 mail.corp.example
10.99.1.25 mx.partner.example
EOF
  in_ns "$ns" ip link set lo up
  # No IPv6, so the captures hold no router solicitations or MLD reports.
  in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# Turn off checksum and segmentation offloads: the captures then hold
# MTU-sized frames with correct checksums, as a mirror port would see them.
no_offload() { in_ns "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true; }

# Connect host namespace $1 (interface eth0, MAC $2, address $3) to the bridge.
attach_lan_host() {
  local ns="$1" mac="$2" addr="$3"
  ip link add eth0 netns "$ns" address "$mac" type veth peer name "$ns" netns mt-sw
  in_ns mt-sw ip link set "$ns" master mt-br0 up
  in_ns "$ns" ip addr add "$addr/24" dev eth0
  in_ns "$ns" ip link set eth0 up
  no_offload "$ns" eth0
  no_offload mt-sw "$ns"
}

log "building the lab network (namespaces ${namespaces[*]})"
for ns in "${namespaces[@]}"; do make_ns "$ns"; done

in_ns mt-sw ip link add mt-br0 type bridge
in_ns mt-sw ip link set mt-br0 up

attach_lan_host mt-gw 74:ac:b9:00:00:01 10.99.0.1
attach_lan_host mt-relay 3c:ec:ef:00:00:10 10.99.0.10
attach_lan_host mt-ws f8:bc:12:00:00:21 10.99.0.21
attach_lan_host mt-printer 30:05:5c:00:00:31 10.99.0.31

ip link add eth1 netns mt-gw address 74:ac:b9:00:01:01 type veth peer name eth0 netns mt-mx address 00:16:3e:00:01:25
in_ns mt-gw ip addr add 10.99.1.1/24 dev eth1
in_ns mt-gw ip link set eth1 up
in_ns mt-gw sysctl -qw net.ipv4.ip_forward=1
in_ns mt-mx ip addr add 10.99.1.25/24 dev eth0
in_ns mt-mx ip link set eth0 up
in_ns mt-mx ip route add 10.99.0.0/24 via 10.99.1.1
no_offload mt-gw eth1
no_offload mt-mx eth0

# Only the lab's other subnet is routed: there is no default route.
for ns in mt-relay mt-ws mt-printer; do
  in_ns "$ns" ip route add 10.99.1.0/24 via 10.99.0.1
done

# ---------------------------------------------------------------- postfix

# Write a Postfix instance's configuration to $work/$name.
#   $1 name, $2 listen address, $3 myhostname, $4 virtual mailbox domain,
#   $5 mailboxes (space-separated local parts), then extra main.cf lines.
make_postfix() {
  local name="$1" addr="$2" host="$3" domain="$4" boxes="$5"
  shift 5
  local dir="$work/$name"
  mkdir -p "$dir/queue" "$dir/data" "$dir/mail"
  chown postfix "$dir/data"
  chown nobody:nogroup "$dir/mail"
  : >"$dir/vmailbox"
  local box
  for box in $boxes; do echo "$box@$domain $domain/$box/" >>"$dir/vmailbox"; done

  cat >"$dir/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = $host
mydomain = ${host#*.}
myorigin = \$mydomain
mydestination =
inet_interfaces = $addr
inet_protocols = ipv4
smtpd_banner = \$myhostname ESMTP
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
alias_maps =
alias_database =
biff = no
virtual_mailbox_domains = $domain
virtual_mailbox_maps = texthash:$dir/vmailbox
virtual_mailbox_base = $dir/mail
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
EOF
  local line
  for line in "$@"; do echo "$line" >>"$dir/main.cf"; done

  cp /usr/share/postfix/master.cf.dist "$dir/master.cf"
  # Every service runs outside a chroot, so no files are copied around.
  postconf -c "$dir" -F '*/*/chroot = n'
  postconf -c "$dir" -M 'postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd'
}

log "configuring Postfix: relay mail.corp.example and MX mx.partner.example"
make_postfix relay 10.99.0.10 mail.corp.example corp.example "alice bob scanner" \
  "mynetworks = 127.0.0.0/8 10.99.0.0/24" \
  "relayhost = [10.99.1.25]" \
  "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination" \
  "smtpd_tls_cert_file = $work/relay/tls/cert.pem" \
  "smtpd_tls_key_file = $work/relay/tls/key.pem" \
  "smtpd_tls_security_level = may" \
  "cyrus_sasl_config_path = $work/relay/sasl" \
  "smtpd_sasl_path = smtpd"
# Port 587 offers AUTH, also before STARTTLS, as printers often use it.
postconf -c "$work/relay" -M 'submission/inet=submission inet n - n - - smtpd'
postconf -c "$work/relay" -P \
  'submission/inet/syslog_name=postfix/submission' \
  'submission/inet/smtpd_sasl_auth_enable=yes' \
  'submission/inet/smtpd_tls_auth_only=no' \
  'submission/inet/smtpd_client_restrictions=permit_sasl_authenticated,reject'

mkdir -p "$work/relay/tls" "$work/relay/sasl"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
  -subj /CN=mail.corp.example -keyout "$work/relay/tls/key.pem" -out "$work/relay/tls/cert.pem" 2>/dev/null
cat >"$work/relay/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $work/relay/sasl/sasldb2
EOF
# Lab-only passwords. printer.pcap contains scanner's base64-encoded in AUTH
# PLAIN, and alice's is sent only inside TLS.
echo -n 'alice-lab-secret' | saslpasswd2 -p -c -f "$work/relay/sasl/sasldb2" -u corp.example alice
echo -n 'scan-lab-secret' | saslpasswd2 -p -c -f "$work/relay/sasl/sasldb2" -u corp.example scanner
chown postfix "$work/relay/sasl/sasldb2"

make_postfix mx 10.99.1.25 mx.partner.example partner.example "carol dave" \
  "mynetworks = 127.0.0.0/8"

for name in relay mx; do
  in_ns "mt-$name" postfix -c "$work/$name" start >"$work/$name.start.log" 2>&1 ||
    { cat "$work/$name.start.log" >&2; exit 1; }
done
# Wait until both smtpd listeners accept connections.
for target in mt-relay:10.99.0.10:25 mt-relay:10.99.0.10:587 mt-mx:10.99.1.25:25; do
  IFS=: read -r ns addr port <<<"$target"
  for _ in $(seq 50); do
    in_ns "$ns" ss -ltn "sport = :$port" | grep -q "$addr:$port" && break
    sleep 0.1
  done
done

# ---------------------------------------------------------------- mail

/usr/bin/env python3 "$here/make-messages.py" "$work/msgs" >"$work/attachments.txt"

# Wait until Postfix instance $1 has logged $2 lines that match $3.
wait_log() {
  local name="$1" count="$2" pattern="$3"
  for _ in $(seq 100); do
    [[ $(grep -cE "$pattern" "$work/$name/maillog" 2>/dev/null || true) -ge $count ]] && return 0
    sleep 0.1
  done
  echo "make-captures.sh: timed out waiting for '$pattern' in the $name log" >&2
  return 1
}

# Run swaks in namespace $1, keep its transcript as $capture/$2.txt.
send() {
  local ns="$1" name="$2"
  shift 2
  log "swaks $name"
  # swaks ends DATA with CRLF "." CRLF itself, so the message's last CRLF is
  # cut off here: the bytes on the wire are then exactly the .eml file.
  head -c -2 "$work/msgs/$name.eml" >"$work/msgs/$name.swaks"
  in_ns "$ns" swaks --suppress-data --data "@$work/msgs/$name.swaks" "$@" \
    >"$work/logs/$capture/$name.txt" 2>&1 || true
}

start_capture() {
  capture="$1"
  mkdir -p "$work/logs/$capture"
  # postlogd appends, so truncating starts each capture's logs empty.
  for name in relay mx; do : >"$work/$name/maillog"; done
  # `ip netns exec` execs tcpdump, so $! is tcpdump itself and gets the SIGINT.
  ip netns exec mt-sw tcpdump -i mt-br0 -s 0 -U -n -w "$work/$capture.pcap" 2>"$work/$capture.tcpdump.log" &
  pids+=("$!")
  for _ in $(seq 50); do grep -q listening "$work/$capture.tcpdump.log" && break; sleep 0.1; done
}

stop_capture() {
  sleep 1
  kill -INT "${pids[-1]}"
  wait "${pids[-1]}" || true
  unset 'pids[-1]'
  cat "$work/$capture.tcpdump.log" >&2
  cp "$work/$capture.pcap" "$outdir/$capture.pcap"
  cp "$work/relay/maillog" "$work/logs/$capture/postfix-relay.log"
  cp "$work/mx/maillog" "$work/logs/$capture/postfix-mx.log"
}

mkdir -p "$outdir" "$work/logs"

log "recording office.pcap"
start_capture office
send mt-ws office-1-utf8-subject --server 10.99.0.10 --port 25 --ehlo ws-alice.corp.example \
  --from alice@corp.example --to carol@partner.example
send mt-ws office-2-two-recipients --server 10.99.0.10 --port 25 --ehlo ws-alice.corp.example \
  --from alice@corp.example --to bob@corp.example,nobody@corp.example --pipeline
send mt-ws office-3-starttls-auth --server 10.99.0.10 --port 587 --ehlo ws-alice.corp.example \
  --from alice@corp.example --to dave@partner.example --tls \
  --auth PLAIN --auth-user alice@corp.example --auth-password alice-lab-secret
# The relay forwards office-1 and office-3 to the MX; wait for both.
wait_log mx 2 'status=sent'
wait_log relay 2 'relay=10\.99\.1\.25.*status=sent'
stop_capture

log "recording printer.pcap"
start_capture printer
send mt-printer printer-1-relay-auth --server 10.99.0.10 --port 587 --ehlo BRN30055C310031 \
  --from scanner@corp.example --to alice@corp.example \
  --auth PLAIN --auth-user scanner@corp.example --auth-password scan-lab-secret
send mt-printer printer-2-direct-mx --server 10.99.1.25 --port 25 --ehlo BRN30055C310031 \
  --from scanner@corp.example --to carol@partner.example
wait_log relay 1 'status=sent \(delivered to maildir\)'
wait_log mx 1 'status=sent \(delivered to maildir\)'
stop_capture

rm -rf "$outdir/logs"
cp -r "$work/logs" "$outdir/logs"
cp "$work/attachments.txt" "$outdir/logs/attachments.txt"
log "done: $(cd "$outdir" && ls -l office.pcap printer.pcap | awk '{print $9, $5, "bytes"}' | paste -sd' ')"
