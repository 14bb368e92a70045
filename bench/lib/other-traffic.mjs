// Non-mail traffic around the SMTP sessions: HTTP and HTTPS flows with random bodies, DNS queries
// over UDP and ARP exchanges. A mail parser must skip all of it.
import { ARP_RECORD_LENGTH, udpRecordLength } from './pcap-writer.mjs';
import { TcpConversation } from './tcp-conversation.mjs';

const WEB_NAMES = ['www.example.com', 'cdn.example.net', 'updates.example.org', 'api.example.com', 'static.example.net'];
const DNS_NAMES = [...WEB_NAMES, 'mx1.example.net', 'relay.corp.example', 'time.example.org', 'intranet.corp.example'];

/** Response body size in bytes: mostly small, with a long tail up to 2 MB. */
function responseSize(rng) {
  const bucket = rng.weighted([60, 30, 10]);
  if (bucket === 0) return rng.int(1024, 20 * 1024);
  if (bucket === 1) return rng.int(20 * 1024, 200 * 1024);
  return rng.int(200 * 1024, 2 * 1024 * 1024);
}

function tcpFlow(rng, pool, network, startMicros, https) {
  const host = network.hosts[rng.int(0, network.hosts.length - 1)];
  const useIpv6 = rng.chance(0.1);
  const endpoint = network.endpoint(host, network.webServer(useIpv6), https ? 443 : 80, useIpv6);
  const conv = new TcpConversation(rng, endpoint, startMicros, rng.int(5000, 120000));
  const size = responseSize(rng);
  conv.handshake();
  conv.waitForClient(rng.int(50, 2000));
  if (https) {
    conv.send(0, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), pool.bytes(512)]));
    conv.waitForServer(rng.int(100, 3000));
    conv.send(1, pool.bytes(rng.int(2500, 5000)));
    conv.waitForClient(rng.int(50, 2000));
    conv.send(0, pool.bytes(rng.int(200, 1500)));
    conv.waitForServer(rng.int(100, 20000));
    conv.send(1, pool.bytes(size));
  } else {
    const path = `/files/${rng.int(1, 999999)}.bin`;
    conv.send(0, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${rng.pick(WEB_NAMES)}\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n\r\n`));
    conv.waitForServer(rng.int(100, 20000));
    const head = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`;
    conv.send(1, Buffer.concat([Buffer.from(head), pool.bytes(size)]));
  }
  conv.closeFromClient();
  return {
    packets: conv.finish(),
    recordBytes: conv.recordBytes,
    emit: (writer, p) => writer.tcp(p.t, endpoint, p.dir, p.flags, p.seq, p.ack, p.payload),
  };
}

/** Builds a DNS message (RFC 1035): one question, and for a response one A record. */
function dnsMessage(rng, id, name, response) {
  const labels = name.split('.');
  const nameLength = labels.reduce((n, l) => n + 1 + l.length, 1);
  const message = Buffer.alloc(12 + nameLength + 4 + (response ? 16 : 0));
  message.writeUInt16BE(id, 0);
  message.writeUInt16BE(response ? 0x8180 : 0x0100, 2);
  message.writeUInt16BE(1, 4);
  message.writeUInt16BE(response ? 1 : 0, 6);
  let p = 12;
  for (const label of labels) {
    message[p++] = label.length;
    p += message.write(label, p, 'ascii');
  }
  message[p++] = 0;
  message.writeUInt16BE(1, p); // type A
  message.writeUInt16BE(1, p + 2); // class IN
  p += 4;
  if (response) {
    message.writeUInt16BE(0xc00c, p); // name: pointer to the question
    message.writeUInt16BE(1, p + 2);
    message.writeUInt16BE(1, p + 4);
    message.writeUInt32BE(300, p + 6);
    message.writeUInt16BE(4, p + 10);
    message.writeUInt32BE(rng.u32(), p + 12);
  }
  return message;
}

function dnsFlow(rng, network, startMicros) {
  const host = network.hosts[rng.int(0, network.hosts.length - 1)];
  const endpoint = network.endpoint(host, network.resolver, 53, rng.chance(0.1));
  const id = rng.int(0, 0xffff);
  const name = rng.pick(DNS_NAMES);
  const packets = [
    { t: startMicros, dir: 0, payload: dnsMessage(rng, id, name, false) },
    { t: startMicros + rng.int(300, 30000), dir: 1, payload: dnsMessage(rng, id, name, true) },
  ];
  return {
    packets,
    recordBytes: packets.reduce((n, p) => n + udpRecordLength(endpoint, p.payload.length), 0),
    emit: (writer, p) => writer.udp(p.t, endpoint, p.dir, p.payload),
  };
}

function arpFlow(rng, network, startMicros) {
  const host = network.hosts[rng.int(0, network.hosts.length - 1)];
  const packets = [
    { t: startMicros, op: 1 },
    { t: startMicros + rng.int(50, 2000), op: 2 },
  ];
  return {
    packets,
    recordBytes: 2 * ARP_RECORD_LENGTH,
    emit: (writer, p) => {
      if (p.op === 1) writer.arp(p.t, 1, host.mac, host.ipv4, host.mac, network.gatewayIp);
      else writer.arp(p.t, 2, network.gatewayMac, network.gatewayIp, host.mac, host.ipv4);
    },
  };
}

/** Builds one flow of other traffic; kind is counted in stats.otherFlows. */
export function buildOtherFlow(rng, pool, network, stats, startMicros) {
  const kind = ['dns', 'arp', 'http', 'https'][rng.weighted([50, 10, 20, 20])];
  stats.otherFlows[kind]++;
  if (kind === 'dns') return dnsFlow(rng, network, startMicros);
  if (kind === 'arp') return arpFlow(rng, network, startMicros);
  return tcpFlow(rng, pool, network, startMicros, kind === 'https');
}
