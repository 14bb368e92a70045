/** TCP header decoding (RFC 9293 section 3.1). Options are skipped, not parsed. */

export const enum TcpResult {
  Ok,
  /** The captured bytes end inside the TCP header. */
  Truncated,
  /** The header contradicts itself or the IP length (data offset below 5 or past the segment). */
  Malformed,
}

/** Fields of the current TCP header; one instance is reused for every frame. */
export class TcpHeader {
  srcPort = 0;
  dstPort = 0;
  seq = 0;
  ack = 0;
  /** The 8 flag bits of header byte 13: FIN 0x01 to URG 0x20, plus ECE 0x40 and CWR 0x80. */
  flags = 0;
  window = 0;
  /** Offset of the payload in the buffer passed to decode. */
  payloadOffset = 0;

  /**
   * Decodes the TCP header at `offset`. `capturedEnd` is where the captured bytes end and
   * `segmentLength` is the header-plus-payload length that the IP header announces.
   */
  decode(buf: Buffer, offset: number, capturedEnd: number, segmentLength: number): TcpResult {
    if (segmentLength < 20) return TcpResult.Malformed;
    if (offset + 20 > capturedEnd) return TcpResult.Truncated;

    const headerLength = (buf[offset + 12] >> 4) * 4;
    if (headerLength < 20 || headerLength > segmentLength) return TcpResult.Malformed;
    if (offset + headerLength > capturedEnd) return TcpResult.Truncated;

    this.srcPort = (buf[offset] << 8) | buf[offset + 1];
    this.dstPort = (buf[offset + 2] << 8) | buf[offset + 3];
    this.seq =
      ((buf[offset + 4] << 24) | (buf[offset + 5] << 16) | (buf[offset + 6] << 8) | buf[offset + 7]) >>> 0;
    this.ack =
      ((buf[offset + 8] << 24) | (buf[offset + 9] << 16) | (buf[offset + 10] << 8) | buf[offset + 11]) >>> 0;
    this.flags = buf[offset + 13];
    this.window = (buf[offset + 14] << 8) | buf[offset + 15];
    this.payloadOffset = offset + headerLength;
    return TcpResult.Ok;
  }
}
