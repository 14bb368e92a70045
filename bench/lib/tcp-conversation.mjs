// Builds the packet list of one TCP connection as seen by a sensor next to the client: client
// segments are stamped when sent, server segments one round-trip time (RTT) later.
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, tcpRecordLength } from './pcap-writer.mjs';

const EMPTY = Buffer.alloc(0);

export class TcpConversation {
  /**
   * @param rng generator from prng.mjs
   * @param endpoint addresses, ports, VLAN and IP version of the connection
   * @param startMicros timestamp of the SYN
   * @param rttMicros round-trip time between sensor and server
   */
  constructor(rng, endpoint, startMicros, rttMicros) {
    this.rng = rng;
    this.endpoint = endpoint;
    this.rtt = rttMicros;
    this.t = startMicros;
    this.mss = endpoint.ipv6 ? 1440 : 1460;
    /** Next sequence number per direction: [client, server]. */
    this.nextSeq = [rng.u32(), rng.u32()];
    /** Packets in the order they were built; finish() sorts them by time. */
    this.packets = [];
    this.recordBytes = 0;
  }

  push(t, dir, flags, payload) {
    const packet = {
      t: Math.round(t),
      dir,
      flags,
      seq: this.nextSeq[dir] >>> 0,
      ack: this.nextSeq[1 - dir] >>> 0,
      payload,
    };
    this.packets.push(packet);
    this.recordBytes += tcpRecordLength(this.endpoint, payload.length, flags);
    this.nextSeq[dir] += payload.length + (flags & (TCP_SYN | TCP_FIN) ? 1 : 0);
    return packet;
  }

  handshake() {
    this.push(this.t, 0, TCP_SYN, EMPTY);
    this.t += this.rtt;
    this.push(this.t, 1, TCP_SYN | TCP_ACK, EMPTY);
    this.t += this.rng.int(5, 60);
    this.push(this.t, 0, TCP_ACK, EMPTY);
  }

  /**
   * Sends payload from dir in MSS-sized segments; the receiver sends a pure ACK after every second
   * segment. Returns the data segments so callers can reorder or duplicate them.
   */
  send(dir, payload) {
    const segments = [];
    const ackDelay = dir === 0 ? this.rtt : this.rng.int(20, 200);
    for (let offset = 0; offset < payload.length; offset += this.mss) {
      const end = Math.min(offset + this.mss, payload.length);
      const last = end === payload.length;
      segments.push(this.push(this.t, dir, last ? TCP_ACK | TCP_PSH : TCP_ACK, payload.subarray(offset, end)));
      if (segments.length % 2 === 0 && !last) this.push(this.t + ackDelay, 1 - dir, TCP_ACK, EMPTY);
      if (!last) this.t += this.rng.int(12, 120);
    }
    return segments;
  }

  /** Advances the clock from a client send to the server's reply: one RTT plus server time. */
  waitForServer(processingMicros) {
    this.t += this.rtt + processingMicros;
  }

  /** Advances the clock from a server reply to the client's next segment. */
  waitForClient(thinkMicros) {
    this.t += thinkMicros;
  }

  /** Closes from the server side, as after QUIT: server FIN, client FIN, last ACK. */
  closeFromServer() {
    this.t += this.rng.int(10, 200);
    this.push(this.t, 1, TCP_FIN | TCP_ACK, EMPTY);
    this.t += this.rng.int(20, 300);
    this.push(this.t, 0, TCP_FIN | TCP_ACK, EMPTY);
    this.t += this.rtt;
    this.push(this.t, 1, TCP_ACK, EMPTY);
  }

  /** Closes from the client side, as an HTTP client does. */
  closeFromClient() {
    this.t += this.rng.int(10, 2000);
    this.push(this.t, 0, TCP_FIN | TCP_ACK, EMPTY);
    this.t += this.rtt;
    this.push(this.t, 1, TCP_FIN | TCP_ACK, EMPTY);
    this.t += this.rng.int(20, 300);
    this.push(this.t, 0, TCP_ACK, EMPTY);
  }

  /** Re-sends a copy of segment after a retransmission timeout. Returns false if it has no data. */
  retransmit(segment) {
    if (segment.payload.length === 0) return false;
    this.packets.push({ ...segment, t: segment.t + this.rtt + this.rng.int(200, 3000) });
    this.recordBytes += tcpRecordLength(this.endpoint, segment.payload.length, segment.flags);
    return true;
  }

  /** Swaps the capture times of two segments so the later one in sequence is seen first. */
  swapTimes(first, second) {
    const t = first.t;
    first.t = second.t;
    second.t = t;
  }

  /** Returns the packets ordered by capture time (stable, so equal times keep build order). */
  finish() {
    return this.packets.sort((a, b) => a.t - b.t);
  }
}
