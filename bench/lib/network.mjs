// The simulated network: client hosts (some on VLANs, all dual-stack), the internal mail relay,
// external mail servers, web servers and the DNS resolver.

const VENDOR_OUIS = [
  [0x00, 0x1b, 0x21], // Intel
  [0x3c, 0x52, 0x82], // Hewlett Packard
  [0x00, 0x0c, 0x29], // VMware
  [0xb8, 0x27, 0xeb], // Raspberry Pi Foundation
  [0xf4, 0x39, 0x09], // Hewlett Packard
  [0x00, 0x26, 0x73], // Ricoh
];

const GATEWAY_MAC = Buffer.from([0x00, 0x00, 0x5e, 0x00, 0x01, 0x01]);
const VLANS = [10, 20, 30];

function ipv4(a, b, c, d) {
  return Buffer.from([a, b, c, d]);
}

function ipv6(prefixWords, interfaceId) {
  const ip = Buffer.alloc(16);
  prefixWords.forEach((word, i) => ip.writeUInt16BE(word, i * 2));
  ip.writeUInt32BE(interfaceId >>> 0, 12);
  return ip;
}

/** Formats an address as text; IPv6 in the RFC 5952 form (longest zero run of two or more as "::"). */
function formatIp(ip) {
  if (ip.length === 4) return ip.join('.');
  const words = [];
  for (let i = 0; i < 16; i += 2) words.push(ip.readUInt16BE(i));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

export function createNetwork(rng, hostCount) {
  const hosts = [];
  for (let i = 0; i < hostCount; i++) {
    const oui = rng.pick(VENDOR_OUIS);
    const mac = Buffer.from([...oui, rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)]);
    const vlan = i % 7 === 3 ? VLANS[i % VLANS.length] : 0;
    hosts.push({
      mac,
      ipv4: ipv4(10, 1 + (i >> 8), i & 0xff, 10 + (i % 200)),
      ipv6: ipv6([0xfd00, 0x0001, 0, 0, 0, 0], 0x1000 + i),
      vlan,
      name: `${rng.pick(['ws', 'laptop', 'printer', 'scanner', 'srv', 'nas'])}-${String(i).padStart(4, '0')}`,
      nextPort: rng.int(32768, 60000),
    });
  }

  const relay = {
    mac: Buffer.from([0x52, 0x54, 0x00, 0x00, 0x00, 0x25]),
    ipv4: ipv4(10, 0, 0, 25),
    ipv6: ipv6([0xfd00, 0, 0, 0, 0, 0], 0x25),
    name: 'relay.corp.example',
    local: true,
  };
  const mailServers = [relay];
  for (let i = 1; i <= 6; i++) {
    mailServers.push({
      mac: GATEWAY_MAC,
      ipv4: ipv4(i % 2 ? 198 : 203, i % 2 ? 51 : 0, i % 2 ? 100 : 113, 10 + i),
      ipv6: ipv6([0x2001, 0x0db8, 0x25, 0, 0, 0], i),
      name: `mx${i}.example.net`,
      local: false,
    });
  }
  const resolver = { mac: Buffer.from([0x52, 0x54, 0x00, 0x00, 0x00, 0x53]), ipv4: ipv4(10, 0, 0, 53), ipv6: ipv6([0xfd00, 0, 0, 0, 0, 0], 0x53) };
  const gatewayIp = ipv4(10, 0, 0, 1);

  return {
    hosts,
    relay,
    mailServers,
    resolver,
    gatewayMac: GATEWAY_MAC,
    gatewayIp,

    /** Builds the endpoint of a new connection from host to server on the host's next ephemeral port. */
    endpoint(host, server, serverPort, useIpv6) {
      const clientPort = host.nextPort;
      host.nextPort = host.nextPort >= 60999 ? 32768 : host.nextPort + 1;
      return {
        clientMac: host.mac,
        serverMac: server.mac,
        clientIp: useIpv6 ? host.ipv6 : host.ipv4,
        serverIp: useIpv6 ? server.ipv6 : server.ipv4,
        clientPort,
        serverPort,
        vlan: host.vlan,
        ipv6: useIpv6,
      };
    },

    /** Web server for other traffic: a new random public address for every flow. */
    webServer(useIpv6) {
      return {
        mac: GATEWAY_MAC,
        ipv4: ipv4(rng.pick([93, 151, 185]), rng.int(0, 255), rng.int(0, 255), rng.int(1, 254)),
        ipv6: ipv6([0x2001, 0x0db8, 0x80, rng.int(0, 0xffff), 0, 0], rng.u32()),
      };
    },
  };
}

export { formatIp };
