#!/usr/bin/env bash
# Record story.pcap: a short office day for mailtap's detection rules, made
# with real Postfix, swaks, dnsmasq and udhcpc in a lab network of network
# namespaces that this script builds and removes.
#
# Usage: sudo captures/make-story.sh [OUTDIR]   (default: the captures/ folder)
#
# Needs root, iproute2, ethtool, postfix, sasl2-bin (saslpasswd2),
# libsasl2-modules, swaks, tcpdump, openssl, python3, dnsmasq-base and udhcpc
# (install.sh installs them). It writes OUTDIR/story.pcap and the evidence that
# captures/README.md is written from: OUTDIR/story-logs/ with each Postfix
# instance's log, the DHCP logs (dnsmasq.txt, udhcpc-*.txt), all swaks
# transcripts (swaks.txt), the send plan (plan.tsv) and the attachments'
# sizes and SHA-256 (attachments.txt).
#
# What happens, in this order (about 90 seconds):
#   1. the printer, the camera and the laptop get DHCP leases from dnsmasq on
#      the router, sending a host name (option 12) and a vendor class (60);
#   2. three workstations send normal mail through the relay, and the printer
#      sends three scans through it;
#   3. the camera sends an alert through the relay with AUTH LOGIN, no TLS;
#   4. the printer sends 300 messages straight to the internet MX;
#   5. the laptop sends one message with a .docm attachment straight to the MX.
#
# Lab network (all inside namespaces, nothing in the root namespace):
#
#   ms-alice   10.98.0.21 f8:bc:12:98:00:21 (Dell)       workstation ws-alice
#   ms-bob     10.98.0.22 14:cb:19:98:00:22 (HP Inc.)    workstation ws-bob
#   ms-chen    10.98.0.23 80:96:21:98:00:23 (Lenovo)     workstation ws-chen
#   ms-printer DHCP       30:05:5c:98:00:31 (Brother)    scan-to-email printer
#   ms-camera  DHCP       00:40:8c:98:00:41 (Axis)       network camera
#   ms-laptop  DHCP       fc:77:74:98:00:77 (Intel)      unknown laptop
#   ms-relay   10.98.0.10 3c:ec:ef:98:00:10 (Supermicro) Postfix relay, mail.corp.example
#   ms-gw      10.98.0.1  74:ac:b9:98:00:01 (Ubiquiti)   router and DHCP server (dnsmasq)
#                10.98.1.1  74:ac:b9:98:01:01
#   ms-mx      10.98.1.25 00:16:3e:98:01:25 (Xensource)  Postfix, mx.partner.example,
#                                                        accepts mail for any domain
#
# The LAN hosts hang on bridge ms-br0 in namespace ms-sw, and tcpdump records
# on that bridge, like a mirror port on the office switch. The MX is reached
# only through ms-gw, so the capture shows its traffic with the router's MAC.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir="$(realpath -m "${1:-$here}")"
work="$(mktemp -d /tmp/ms-story.XXXXXX)"
chmod 755 "$work"
namespaces=(ms-sw ms-gw ms-relay ms-mx ms-alice ms-bob ms-chen ms-printer ms-camera ms-laptop)
pids=()

# Lab-only passwords, kept in the README so tests can check that no output
# contains them. The camera's goes over the wire in clear text (AUTH LOGIN).
alice_password='alice-lab-secret'
camera_password='cam-lab-Secret-7731'

log() { printf '==> %s\n' "$*" >&2; }

cleanup() {
  local pid ns
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -f "$work/dnsmasq.pid" ]]; then kill "$(cat "$work/dnsmasq.pid")" 2>/dev/null || true; fi
  for ns in relay mx; do
    [[ -d "$work/$ns" ]] && ip netns exec "ms-$ns" postfix -c "$work/$ns" stop >/dev/null 2>&1 || true
  done
  for ns in "${namespaces[@]}"; do
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$work"
}
trap cleanup EXIT

if [[ $EUID -ne 0 ]]; then
  echo "make-story.sh: must run as root (it creates network namespaces)" >&2
  exit 1
fi
for tool in ip ethtool postfix postconf postqueue saslpasswd2 swaks tcpdump openssl python3 dnsmasq udhcpc; do
  command -v "$tool" >/dev/null || { echo "make-story.sh: $tool not found; run ./install.sh" >&2; exit 1; }
done
for ns in "${namespaces[@]}"; do
  if ip netns list | grep -qw "^$ns"; then
    echo "make-story.sh: namespace $ns exists; is another run active? Remove it with: ip netns del $ns" >&2
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
10.98.0.10 mail.corp.example
10.98.1.25 mx.partner.example
EOF
  in_ns "$ns" ip link set lo up
  # No IPv6, so the capture contains no router solicitations or MLD reports.
  in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# Turn off checksum and segmentation offloads: the capture then contains
# MTU-sized frames with correct checksums, as a mirror port would see them.
no_offload() { in_ns "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true; }

# Connect host namespace $1 (interface eth0, MAC $2) to the bridge, with the
# static address $3 or, when $3 is empty, no address until DHCP gives one.
attach_lan_host() {
  local ns="$1" mac="$2" addr="$3"
  ip link add eth0 netns "$ns" address "$mac" type veth peer name "$ns" netns ms-sw
  in_ns ms-sw ip link set "$ns" master ms-br0 up
  [[ -n "$addr" ]] && in_ns "$ns" ip addr add "$addr/24" dev eth0
  in_ns "$ns" ip link set eth0 up
  no_offload "$ns" eth0
  no_offload ms-sw "$ns"
}

log "building the lab network (namespaces ${namespaces[*]})"
for ns in "${namespaces[@]}"; do make_ns "$ns"; done

in_ns ms-sw ip link add ms-br0 type bridge
in_ns ms-sw ip link set ms-br0 up

attach_lan_host ms-gw 74:ac:b9:98:00:01 10.98.0.1
attach_lan_host ms-relay 3c:ec:ef:98:00:10 10.98.0.10
attach_lan_host ms-alice f8:bc:12:98:00:21 10.98.0.21
attach_lan_host ms-bob 14:cb:19:98:00:22 10.98.0.22
attach_lan_host ms-chen 80:96:21:98:00:23 10.98.0.23
attach_lan_host ms-printer 30:05:5c:98:00:31 ''
attach_lan_host ms-camera 00:40:8c:98:00:41 ''
attach_lan_host ms-laptop fc:77:74:98:00:77 ''

ip link add eth1 netns ms-gw address 74:ac:b9:98:01:01 type veth peer name eth0 netns ms-mx address 00:16:3e:98:01:25
in_ns ms-gw ip addr add 10.98.1.1/24 dev eth1
in_ns ms-gw ip link set eth1 up
in_ns ms-gw sysctl -qw net.ipv4.ip_forward=1
in_ns ms-mx ip addr add 10.98.1.25/24 dev eth0
in_ns ms-mx ip link set eth0 up
in_ns ms-mx ip route add 10.98.0.0/24 via 10.98.1.1
no_offload ms-gw eth1
no_offload ms-mx eth0

# Only the lab's other subnet is routed: there is no default route. The DHCP
# clients get the same route from their udhcpc script below.
for ns in ms-relay ms-alice ms-bob ms-chen; do
  in_ns "$ns" ip route add 10.98.1.0/24 via 10.98.0.1
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
make_postfix relay 10.98.0.10 mail.corp.example corp.example \
  "alice bob chen scanner camera facilities security" \
  "mynetworks = 127.0.0.0/8 10.98.0.0/24" \
  "relayhost = [10.98.1.25]" \
  "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination" \
  "smtpd_tls_cert_file = $work/relay/tls/cert.pem" \
  "smtpd_tls_key_file = $work/relay/tls/key.pem" \
  "smtpd_tls_security_level = may" \
  "cyrus_sasl_config_path = $work/relay/sasl" \
  "smtpd_sasl_path = smtpd"
# Port 587 offers AUTH, also before STARTTLS, as cameras and printers often use it.
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
echo -n "$alice_password" | saslpasswd2 -p -c -f "$work/relay/sasl/sasldb2" -u corp.example alice
echo -n "$camera_password" | saslpasswd2 -p -c -f "$work/relay/sasl/sasldb2" -u corp.example camera
chown postfix "$work/relay/sasl/sasldb2"

# The MX is a stand-in for every server on the internet: every client is in
# mynetworks, so it accepts mail for any domain, and it discards all of it
# but partner.example's. Unknown partner.example mailboxes are rejected with
# 550 (smtpd_reject_unlisted_recipient, on by default).
make_postfix mx 10.98.1.25 mx.partner.example partner.example "carol dave" \
  "mynetworks = 0.0.0.0/0" \
  "default_transport = discard"

for name in relay mx; do
  in_ns "ms-$name" postfix -c "$work/$name" start >"$work/$name.start.log" 2>&1 ||
    { cat "$work/$name.start.log" >&2; exit 1; }
done
# Wait until the smtpd listeners accept connections.
for target in ms-relay:10.98.0.10:25 ms-relay:10.98.0.10:587 ms-mx:10.98.1.25:25; do
  IFS=: read -r ns addr port <<<"$target"
  for _ in $(seq 50); do
    in_ns "$ns" ss -ltn "sport = :$port" | grep -q "$addr:$port" && break
    sleep 0.1
  done
done

# ---------------------------------------------------------------- DHCP

# dnsmasq on the router: DHCP only (port 0 turns DNS off). The printer and the
# camera have reservations; the laptop gets an address from the pool.
log "starting dnsmasq on the router"
in_ns ms-gw dnsmasq --port=0 --interface=eth0 --bind-interfaces --no-resolv --no-hosts \
  --user=root --group=root --pid-file="$work/dnsmasq.pid" \
  --dhcp-authoritative --no-ping --dhcp-leasefile="$work/dnsmasq.leases" \
  --dhcp-range=10.98.0.100,10.98.0.199,255.255.255.0,12h \
  --dhcp-host=30:05:5c:98:00:31,10.98.0.31 \
  --dhcp-host=00:40:8c:98:00:41,10.98.0.41 \
  --dhcp-option=option:router,10.98.0.1 \
  --log-dhcp --log-facility="$work/dnsmasq.log"

# udhcpc runs this script on each DHCP event. It sets the leased address and
# the route to the "internet" subnet through the offered router.
cat >"$work/udhcpc.script" <<'EOF'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for gw in $router; do ip route replace 10.98.1.0/24 via "$gw"; break; done
    echo "udhcpc $1: $interface $ip/$mask router $router lease $lease"
    ;;
esac
EOF
chmod 755 "$work/udhcpc.script"

# Get a lease in namespace $1 with host name $2 (option 12) and vendor class $3 (option 60).
dhcp_lease() {
  local ns="$1" hostname="$2" vendor="$3"
  log "DHCP: $ns as $hostname ($vendor)"
  in_ns "$ns" udhcpc -i eth0 -f -q -n -t 5 -T 1 -s "$work/udhcpc.script" \
    -x "hostname:$hostname" -V "$vendor" >>"$work/logs/udhcpc-$ns.txt" 2>&1
}

# ---------------------------------------------------------------- messages

# Write every message as $1/<name>.eml (CRLF), the send plan $1/plan.tsv
# (actor, message name, envelope sender, comma-separated recipients) and the
# attachments' sizes and SHA-256 in $1/attachments.txt.
# Only the Python standard library is used and nothing depends on the clock,
# so the files are the same on every run.
make_messages() {
  python3 - "$1" <<'PYTHON'
import hashlib
import sys
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
plan = []
attachments = []


def filler(seed: str, size: int) -> bytes:
    """Return `size` bytes of a SHA-256 chain: incompressible and the same on every run."""
    data = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(data) < size:
        data += block
        block = hashlib.sha256(block).digest()
    return bytes(data[:size])


def add(actor, name, sender, to, subject, minute, text, attachment=None, envelope_to=None):
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    hour, rest = divmod(minute, 60)
    msg["Date"] = f"Tue, 05 Mar 2024 {hour:02d}:{rest:02d}:00 +0100"
    host = {"alice": "ws-alice", "bob": "ws-bob", "chen": "ws-chen", "scan": "BRN30055C980031",
            "burst": "BRN30055C980031", "camera": "axis-00408c980041", "laptop": "DESKTOP-7QK2M4N"}[actor]
    msg["Message-ID"] = f"<20240305.{name}@{host}.corp.example>"
    msg.set_content(text)
    if attachment is not None:
        filename, maintype, subtype, data = attachment
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        attachments.append((name, filename, len(data), hashlib.sha256(data).hexdigest()))
    (out / f"{name}.eml").write_bytes(msg.as_bytes(policy=SMTP))
    address = sender.split("<")[-1].rstrip(">")
    plan.append((actor, name, address, ",".join(envelope_to or [a.split("<")[-1].rstrip(">") for a in to])))


def pdf(seed, size):
    return b"%PDF-1.4\n" + filler(seed, size - 15) + b"\n%%EOF\n"


# Normal office mail: (subject, recipients, attachment or None).
office = {
    "alice": [
        ("Agenda for Monday", ["bob@corp.example", "chen@corp.example"], None),
        ("Offer 2024-117", ["carol@partner.example"], ("offer-2024-117.pdf", "application", "pdf", pdf("offer", 400))),
        ("Re: delivery dates", ["orders@supplier.example"], None),
        ("Lunch?", ["bob@corp.example"], None),
        ("Contract draft", ["dave@partner.example", "carol@partner.example"], None),
        ("Travel expenses", ["facilities@corp.example"], None),
        ("Re: Offer 2024-117", ["carol@partner.example"], None),
        ("Meeting notes", ["chen@corp.example"], ("notes.txt", "text", "plain", b"Notes of the Monday meeting.\n")),
        ("Invoice question", ["billing@customer.example"], None),
        ("Parking", ["facilities@corp.example"], None),
        ("Re: Contract draft", ["dave@partner.example"], None),
        ("See you tomorrow", ["bob@corp.example"], None),
    ],
    "bob": [
        ("Server maintenance tonight", ["alice@corp.example", "chen@corp.example"], None),
        ("Order 5531", ["orders@supplier.example"], None),
        ("Re: Lunch?", ["alice@corp.example"], None),
        # chne@ is a typo: the relay rejects it with 550 and delivers to chen.
        ("Printer on floor 2", ["chen@corp.example", "chne@corp.example"], None),
        ("Stock list", ["sales@customer.example"], ("stock.csv", "text", "csv", b"item,count\nA-100,12\nB-200,7\n")),
        ("Re: Order 5531", ["orders@supplier.example"], None),
        ("Backup report", ["alice@corp.example"], None),
        ("Holiday plan", ["facilities@corp.example"], None),
        ("Delivery note", ["dave@partner.example"], None),
        ("Re: Server maintenance", ["chen@corp.example"], None),
        ("Quote request", ["sales@customer.example"], None),
        ("Done for today", ["alice@corp.example"], None),
    ],
    "chen": [
        ("Design review", ["alice@corp.example", "bob@corp.example"], None),
        ("Samples", ["carol@partner.example"], None),
        ("Re: Design review", ["alice@corp.example"], None),
        ("Figures", ["bob@corp.example"], ("figures.csv", "text", "csv", b"month,value\n1,10\n2,12\n3,15\n")),
        ("Shipping address", ["orders@supplier.example"], None),
        ("Re: Printer on floor 2", ["bob@corp.example"], None),
        ("Drawing rev B", ["carol@partner.example"], ("drawing-rev-b.pdf", "application", "pdf", pdf("drawing", 500))),
        ("Desk move", ["facilities@corp.example"], None),
        ("Re: Samples", ["carol@partner.example"], None),
        ("Friday", ["alice@corp.example"], None),
    ],
}
names = {"alice": "Alice Arnold", "bob": "Bob Brandt", "chen": "Chen Li"}
for actor, messages in office.items():
    for index, (subject, to, attachment) in enumerate(messages, start=1):
        add(actor, f"{actor}-{index:02d}", f"{names[actor]} <{actor}@corp.example>", to, subject,
            8 * 60 + 10 * index, f"{subject}.\n\n{names[actor]}\n", attachment)

# Scans through the relay, the printer's normal job.
printer = "Brother MFC-L2750DW <scanner@corp.example>"
for index, to in enumerate(["alice@corp.example", "bob@corp.example", "carol@partner.example"], start=1):
    add("scan", f"scan-{index}", printer, [to], "Scanned from BRN30055C980031", 9 * 60 + 5 * index,
        "Scanned document attached.\n", (f"Scan_20240305_09{5 * index:02d}00.pdf", "application", "pdf",
                                         pdf(f"scan{index}", 600)))

# The camera's alert.
add("camera", "camera-1", "AXIS M3106-L <camera@corp.example>", ["security@corp.example"],
    "Motion detected: loading dock", 10 * 60 + 2, "Motion detected at 10:02 on camera loading-dock.\n",
    ("snapshot.jpg", "image", "jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + filler("jpeg", 300) + b"\xff\xd9"))

# The printer's burst: 300 messages straight to the MX, one recipient each at
# 60 domains x 5 mailboxes. Every 25th message also names an unknown
# partner.example mailbox, which the MX rejects with 550.
mailboxes = ["info", "sales", "office", "contact", "billing"]
for index in range(1, 301):
    domain = f"customer{(index - 1) % 60 + 1:02d}.example"
    to = [f"{mailboxes[(index - 1) // 60]}@{domain}"]
    envelope_to = list(to)
    if index % 25 == 0:
        envelope_to.append(f"staff{index // 25:02d}@partner.example")
    add("burst", f"burst-{index:03d}", printer, to, f"Payment advice {7000 + index}", 10 * 60 + 30,
        "Please find the payment advice at the link below.\nhttp://pay.invalid/a\n", envelope_to=envelope_to)

# The unknown laptop: one message with a macro-enabled Word attachment.
add("laptop", "laptop-1", "Accounts <accounts@corp.example>", ["ap@supplier.example"], "Invoice 2024-0412",
    11 * 60, "Please see the attached invoice.\n",
    ("Invoice_2024-0412.docm", "application", "vnd.ms-word.document.macroEnabled.12",
     b"PK\x03\x04" + filler("docm", 700)))

with open(out / "plan.tsv", "w") as f:
    for row in plan:
        f.write("\t".join(row) + "\n")
with open(out / "attachments.txt", "w") as f:
    f.write("message\tfile name\tsize\tsha256\n")
    for row in attachments:
        f.write("\t".join(str(v) for v in row) + "\n")
PYTHON
}

# ---------------------------------------------------------------- sending

# Each actor's namespace and swaks options (server, port, EHLO name, TLS, AUTH).
actor_args() {
  case "$1" in
    alice) echo ms-alice --server 10.98.0.10 --port 587 --ehlo ws-alice.corp.example --tls \
      --auth PLAIN --auth-user alice@corp.example --auth-password "$alice_password" ;;
    bob) echo ms-bob --server 10.98.0.10 --port 25 --ehlo ws-bob.corp.example ;;
    chen) echo ms-chen --server 10.98.0.10 --port 25 --ehlo ws-chen.corp.example --tls ;;
    scan) echo ms-printer --server 10.98.0.10 --port 25 --ehlo BRN30055C980031 ;;
    camera) echo ms-camera --server 10.98.0.10 --port 587 --ehlo axis-00408c980041 \
      --auth LOGIN --auth-user camera@corp.example --auth-password "$camera_password" ;;
    burst) echo ms-printer --server 10.98.1.25 --port 25 --ehlo BRN30055C980031 ;;
    laptop) echo ms-laptop --server 10.98.1.25 --port 25 --ehlo DESKTOP-7QK2M4N ;;
  esac
}

# Send message $1 of the plan with swaks and keep its transcript.
send() {
  local name="$1" actor from to
  IFS=$'\t' read -r actor _ from to < <(awk -F'\t' -v n="$name" '$2 == n' "$work/msgs/plan.tsv")
  local args
  read -r -a args <<<"$(actor_args "$actor")"
  # swaks ends DATA with CRLF "." CRLF itself, so the message's last CRLF is
  # cut off here: the bytes on the wire are then exactly the .eml file.
  head -c -2 "$work/msgs/$name.eml" >"$work/msgs/$name.swaks"
  in_ns "${args[0]}" swaks --timeout 10 --suppress-data --data "@$work/msgs/$name.swaks" \
    --from "$from" --to "$to" "${args[@]:1}" >"$work/logs/swaks/$name.txt" 2>&1 || true
}

# Send the messages of actor $1 one after another, $2 seconds apart, after
# waiting $3 seconds.
send_series() {
  local actor="$1" gap="$2" delay="$3" name
  sleep "$delay"
  for name in $(awk -F'\t' -v a="$actor" '$1 == a { print $2 }' "$work/msgs/plan.tsv"); do
    send "$name"
    sleep "$gap"
  done
}

# Send the burst, $1 sessions at a time.
send_burst() {
  local parallel="$1" count=0 name
  for name in $(awk -F'\t' '$1 == "burst" { print $2 }' "$work/msgs/plan.tsv"); do
    send "$name" &
    count=$((count + 1))
    ((count % parallel == 0)) && wait
  done
  wait
}

# Wait until both Postfix queues are empty, that is every accepted message was
# delivered, discarded or bounced.
wait_queues() {
  local name
  for _ in $(seq 300); do
    local busy=0
    for name in relay mx; do
      in_ns "ms-$name" postqueue -c "$work/$name" -p 2>/dev/null | grep -q 'Mail queue is empty' || busy=1
    done
    [[ $busy -eq 0 ]] && return 0
    sleep 0.2
  done
  echo "make-story.sh: timed out after 60 seconds waiting for the Postfix queues to empty" >&2
  return 1
}

mkdir -p "$outdir" "$work/logs/swaks"
make_messages "$work/msgs"
for name in relay mx; do : >"$work/$name/maillog"; done

log "recording story.pcap"
# `ip netns exec` execs tcpdump, so $! is tcpdump itself and gets the SIGINT.
ip netns exec ms-sw tcpdump -i ms-br0 -s 0 -U -n -w "$work/story.pcap" 2>"$work/logs/tcpdump.txt" &
pids+=("$!")
tcpdump_pid="$!"
for _ in $(seq 50); do grep -q listening "$work/logs/tcpdump.txt" && break; sleep 0.1; done
sleep 1

dhcp_lease ms-printer BRN30055C980031 'Brother MFC-L2750DW'
dhcp_lease ms-camera axis-00408c980041 'AXIS,Network Camera,M3106-L Mk II'
dhcp_lease ms-laptop DESKTOP-7QK2M4N 'MSFT 5.0'

log "normal office mail, scans and the camera alert (about 60 seconds)"
send_series alice 5 0 & pids+=("$!")
send_series bob 5 1.5 & pids+=("$!")
send_series chen 6 3 & pids+=("$!")
send_series scan 15 5 & pids+=("$!")
send_series camera 0 30 & pids+=("$!")
wait "${pids[@]:1}"
pids=("$tcpdump_pid")

log "the printer's burst: 300 messages straight to the MX"
# A subshell, so that its `wait` does not wait for tcpdump too.
(send_burst 10)

sleep 5
log "the laptop's message straight to the MX"
send laptop-1

wait_queues
sleep 1
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
pids=()
cat "$work/logs/tcpdump.txt" >&2

cp "$work/story.pcap" "$outdir/story.pcap"
# The logs are named .txt because the repository's .gitignore ignores *.log.
cp "$work/relay/maillog" "$work/logs/postfix-relay.txt"
cp "$work/mx/maillog" "$work/logs/postfix-mx.txt"
cp "$work/dnsmasq.log" "$work/logs/dnsmasq.txt"
cp "$work/msgs/plan.tsv" "$work/msgs/attachments.txt" "$work/logs/"
# One file for all swaks transcripts, in the order of the plan.
for name in $(cut -f2 "$work/msgs/plan.tsv"); do
  printf '### %s\n' "$name"
  cat "$work/logs/swaks/$name.txt"
done >"$work/logs/swaks.txt"
rm -r "$work/logs/swaks"
rm -rf "$outdir/story-logs"
cp -r "$work/logs" "$outdir/story-logs"
log "done: $(stat -c '%n %s bytes' "$outdir/story.pcap")"
