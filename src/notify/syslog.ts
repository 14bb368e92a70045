/**
 * Syslog output: RFC 5424 messages whose MSG is an ArcSight CEF record (CEF:0), over UDP (one
 * message per datagram, RFC 5426) or TCP (octet-counting framing, RFC 6587 section 3.4.1).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { AlertInfo } from './alert-info.js';

/**
 * Facility local0 (16), which RFC 5424 reserves for local use. Most SIEM inputs accept it by
 * default (an estimate, not checked per product).
 */
const FACILITY = 16;
/** RFC 5424 severities: critical 2, error 3, warning 4, notice 5. */
const SYSLOG_SEVERITY = { critical: 2, high: 3, medium: 4, low: 5 } as const;
/** CEF severities from 0 to 10. */
const CEF_SEVERITY = { low: 3, medium: 5, high: 8, critical: 10 } as const;

/** Escapes a CEF header field: backslash and pipe are escaped, and line breaks become a space. */
function cefHeader(value: string): string {
  return value.replace(/[\\|]/g, (c) => '\\' + c).replace(/[\r\n]+/g, ' ');
}

/** Escapes a CEF extension value: backslash, equals sign and line breaks. */
function cefValue(value: string): string {
  return value.replace(/[\\=]/g, (c) => '\\' + c).replace(/\r?\n|\r/g, '\\n');
}

function millis(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Formats the CEF record of an alert. */
export function formatCef(info: AlertInfo, version: string): string {
  const header = [
    'CEF:0',
    'mailtap',
    'mailtap',
    version,
    info.rule,
    info.message || info.rule,
    String(CEF_SEVERITY[info.severity]),
  ].map((field, index) => (index === 0 ? field : cefHeader(field)));
  const extension: Array<[string, string | number | undefined]> = [
    ['rt', millis(info.timestamp)],
    ['start', millis(info.start)],
    ['end', millis(info.end)],
    ['act', info.action],
    ['cat', info.rule],
    ['externalId', info.id],
    ['src', info.ip],
    ['smac', info.mac],
    ['cnt', info.count],
    ['cs1Label', 'device'],
    ['cs1', info.deviceLabel ?? info.deviceKey],
    ['cs2Label', 'owner'],
    ['cs2', info.ownerEmail ?? info.ownerName],
    ['msg', info.message],
  ];
  const pairs = extension
    .filter((pair): pair is [string, string | number] => pair[1] !== undefined && pair[1] !== '')
    .map(([key, value]) => `${key}=${cefValue(String(value))}`);
  return `${header.join('|')}|${pairs.join(' ')}`;
}

/** Formats the RFC 5424 message: header, no structured data, CEF as MSG. */
export function formatSyslog(info: AlertInfo, version: string, host = hostname(), now = new Date()): string {
  const pri = FACILITY * 8 + SYSLOG_SEVERITY[info.severity];
  // HOSTNAME, APP-NAME, PROCID and MSGID are printable US-ASCII without spaces (RFC 5424 section 6).
  const safeHost = host.replace(/[^\x21-\x7e]/g, '').slice(0, 255) || '-';
  const msgId = info.action.replace(/[^\x21-\x7e]/g, '').slice(0, 32) || '-';
  return `<${pri}>1 ${now.toISOString()} ${safeHost} mailtap ${process.pid} ${msgId} - ${formatCef(info, version)}`;
}

export interface SyslogTarget {
  host: string;
  port: number;
  protocol: 'udp' | 'tcp';
}

/** Milliseconds to wait for a TCP connection to the collector. */
const CONNECT_TIMEOUT_MS = 5000;

/** Sends syslog messages. A TCP connection is opened on first use and again after an error. */
export class SyslogSender {
  private udp: UdpSocket | undefined;
  private tcp: Socket | undefined;
  private tcpReady: Promise<Socket> | undefined;

  constructor(private readonly target: SyslogTarget) {}

  async send(message: string): Promise<void> {
    const data = Buffer.from(message, 'utf8');
    if (this.target.protocol === 'udp') {
      this.udp ??= createSocket(this.target.host.includes(':') ? 'udp6' : 'udp4');
      const udp = this.udp;
      await new Promise<void>((resolve, reject) =>
        udp.send(data, this.target.port, this.target.host, (error) => (error ? reject(error) : resolve())),
      );
      return;
    }
    const socket = await this.connection();
    const framed = Buffer.concat([Buffer.from(`${data.length} `), data]);
    await new Promise<void>((resolve, reject) => socket.write(framed, (error) => (error ? reject(error) : resolve())));
  }

  private connection(): Promise<Socket> {
    if (this.tcp !== undefined && !this.tcp.destroyed) return Promise.resolve(this.tcp);
    this.tcpReady ??= new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: this.target.host, port: this.target.port });
      socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('connection to the syslog collector timed out')));
      socket.once('connect', () => {
        socket.setTimeout(0);
        this.tcp = socket;
        this.tcpReady = undefined;
        resolve(socket);
      });
      // Errors after the connection also end up here, and the close handler then drops the socket.
      socket.on('error', (error) => {
        this.tcpReady = undefined;
        reject(error);
      });
      socket.on('close', () => {
        if (this.tcp === socket) this.tcp = undefined;
      });
    });
    return this.tcpReady;
  }

  close(): void {
    this.udp?.close();
    this.udp = undefined;
    this.tcp?.end();
    this.tcp = undefined;
  }
}
