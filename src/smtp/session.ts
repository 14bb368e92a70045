import type { Anomaly, CloseReason, Direction, Flow, StreamHandler } from '../tcp/types.js';
import type { SmtpAnomalyName } from './anomalies.js';
import {
  MAX_UNKNOWN_SASL_RESPONSES,
  decodeBase64,
  extractUser,
  firstResponseHasUser,
  isBase64Line,
  loginPrompt,
  saslResponseCount,
  type LoginPrompt,
} from './auth.js';
import { DataBodyDecoder } from './body.js';
import { looksLikeCommand, parseBdatArgument, parseCommandLine, parsePathArgument } from './commands.js';
import { LineSplitter } from './lines.js';
import { PendingQueue, canMerge, type Pending, type PendingKind } from './pending.js';
import { ReplyAssembler, parseReplyLine, type AssembledReply } from './replies.js';
import { createTransaction, settleTransaction, type TxState } from './transaction.js';
import type { SmtpEvents, SmtpLimits, SmtpReply, SmtpSessionInfo } from './types.js';

export const DEFAULT_SMTP_PORTS: readonly number[] = [25, 587, 2525];
export const IMPLICIT_TLS_PORTS: readonly number[] = [465];

export const DEFAULT_SMTP_LIMITS: SmtpLimits = {
  // RFC 5321 allows 512-byte command lines, but XOAUTH2 tokens and long EHLO replies exceed it.
  maxLineLength: 4096,
  maxPendingCommands: 1024,
  maxRecipients: 1000,
  maxAnomaliesPerSession: 100,
};

/**
 * Client bytes buffered while the reply that decides their meaning is outstanding (body
 * after DATA, SASL response after AUTH, TLS after STARTTLS). Past this, the session decides
 * as if the server side were missing.
 */
export const MAX_HELD_CLIENT_BYTES = 65536;

/** Transactions waiting for replies before the oldest is emitted without them. */
export const MAX_OPEN_TRANSACTIONS = 64;

/** Extension lines kept from an EHLO reply. */
const MAX_EXTENSIONS = 64;
/** Characters kept of a HELO name or user name. */
const MAX_NAME_LENGTH = 256;

/** Reply codes a server greets with (RFC 5321 section 3.1). */
const BANNER_CODES: ReadonlySet<number> = new Set([220, 421, 554]);
/** Reply codes that are valid replies to the listed kinds of command only. */
const SINGLE_COMMAND_CODES: ReadonlyMap<number, readonly PendingKind[]> = new Map([
  [334, ['auth']],
  [235, ['auth']],
  [354, ['data']],
  [220, ['banner', 'starttls']],
]);
/** Waiting commands searched for the one that a single-command reply code belongs to. */
const REALIGN_WINDOW = 16;

const CR = 0x0d;
const TLS_HANDSHAKE = 0x16;
const SSL2_RECORD = 0x80;

type ClientMode = 'command' | 'sasl' | 'await' | 'body' | 'chunk' | 'ignore';
type AwaitReason = 'data' | 'auth' | 'starttls';

interface HeldChunk {
  data: Buffer;
  ts: number;
}

/** SASL exchange in progress. */
interface SaslState {
  mechanism: string;
  /** Client responses seen so far, the initial response included. */
  responses: number;
  /** Responses still expected when the server side cannot tell; undefined for unknown mechanisms. */
  remaining: number | undefined;
  /**
   * The 334 challenge that the next client response replies to, when the session waited for it.
   * AUTH LOGIN takes the user name only from a response to a "Username:" challenge.
   */
  prompt: LoginPrompt | undefined;
}

/**
 * SMTP session over the two byte streams of one TCP connection. Pairs commands with replies
 * in order (RFC 2920 pipelining), follows transactions from MAIL FROM to the reply after the
 * body, streams DATA and BDAT bodies to a sink, and stops parsing at TLS. Bad input becomes
 * an anomaly; no exception leaves the class, and memory is bounded by SmtpLimits and the
 * constants above.
 *
 * Client bytes that follow DATA, AUTH or STARTTLS are buffered until the server's reply
 * decides their meaning. Without server bytes (client-only capture), the session decides at once: body
 * after DATA, a mechanism's number of SASL responses after AUTH, TLS when the next byte
 * starts a TLS record after STARTTLS.
 *
 * Every sink returned by openBody gets exactly one end() call, always before the
 * transaction event of its transaction. Transactions are emitted in order of depth.
 */
export class SmtpSession implements StreamHandler {
  private readonly limits: SmtpLimits;
  private readonly info: SmtpSessionInfo;
  private readonly clientLines: LineSplitter;
  private readonly serverLines: LineSplitter;
  private readonly replies = new ReplyAssembler();
  private readonly body: DataBodyDecoder;

  private clientMode: ClientMode = 'command';
  private serverIgnored = false;
  private clientResync = false;
  private serverResync = false;
  private serverSeen = false;
  private commandSeen = false;
  /** Replies without a pending command are expected (after a gap): count them without an anomaly. */
  private unmatchedExpected = false;
  private closed = false;
  private now: number;

  private readonly pending = new PendingQueue();
  private pendingOverflowReported = false;
  /**
   * The queue was still over half full after compaction: new commands are counted without
   * being paired with their replies until it drains to half.
   */
  private pendingBlind = false;

  private awaitEntry: Pending | undefined;
  private awaitReason: AwaitReason = 'data';
  private awaitTx: TxState | undefined;
  /** The awaited command was counted only, so its reply will not be paired with it. */
  private awaitUnpaired = false;
  private held: HeldChunk[] = [];
  private heldBytes = 0;

  private currentTx: TxState | undefined;
  private bodyTx: TxState | undefined;
  private openTxs: TxState[] = [];
  private depth = 0;
  private chunkRemaining = 0;
  private chunkLast = false;
  /** Chunks of BDAT commands pipelined after a rejected BDAT are read and dropped, as the server does (RFC 3030). */
  private discardBdat = false;

  private sasl: SaslState | undefined;
  private bareLfReported = false;
  private bareCrReported = false;
  /** smtp_line_too_long of a line, per direction, that passed the limit and has not ended yet. */
  private readonly unendedLines: [Anomaly | undefined, Anomaly | undefined] = [undefined, undefined];

  private anomalyCount = 0;
  private tooManyAnomalies: Anomaly | undefined;

  constructor(
    private readonly flow: Flow,
    private readonly events: SmtpEvents,
    options: { implicitTls?: boolean; limits?: Partial<SmtpLimits> } = {},
  ) {
    this.limits = { ...DEFAULT_SMTP_LIMITS, ...options.limits };
    this.now = flow.startTs;
    this.info = {
      flow,
      startTs: flow.startTs,
      endTs: flow.startTs,
      extensions: [],
      tls: false,
      transactions: 0,
      commands: 0,
      replies: 0,
      clientOnly: true,
      closeReason: '',
      anomalies: [],
    };
    this.clientLines = new LineSplitter(this.limits.maxLineLength);
    this.serverLines = new LineSplitter(this.limits.maxLineLength);
    this.body = new DataBodyDecoder((chunk) => this.writeBody(chunk));

    if (options.implicitTls === true) {
      this.info.tls = true;
      this.info.tlsMode = 'implicit';
      this.clientMode = 'ignore';
      this.serverIgnored = true;
    } else if (!flow.midstream) {
      this.push('banner', undefined);
    }
  }

  /** Entries in the queue of commands waiting for replies; at most maxPendingCommands + 1. */
  get pendingEntries(): number {
    return this.pending.size;
  }

  onData(direction: Direction, data: Buffer, ts: number): void {
    if (this.closed) return;
    this.now = ts;
    // A packet from the server (its SYN-ACK) shows that the capture has the server side, so
    // commands sent before the greeting wait for their replies instead of being settled as
    // client-only.
    if (!this.serverSeen && this.flow.packets[1] > 0) this.serverSeen = true;
    if (direction === 1) {
      this.serverSeen = true;
      if (!this.serverIgnored) this.processServer(data, ts);
    } else if (this.clientMode !== 'ignore') {
      this.processClient(data, ts);
    }
  }

  onGap(direction: Direction, length: number, ts: number): void {
    if (this.closed) return;
    this.now = ts;
    if (direction === 1) {
      this.serverSeen = true;
      if (!this.serverIgnored) this.serverGap(length);
    } else if (this.clientMode !== 'ignore') {
      this.clientGap(length, ts);
    }
  }

  onAnomaly(anomaly: Anomaly): void {
    if (this.closed) return;
    // A stream anomaly (a retransmission that changed bytes) belongs to the transaction whose
    // bytes it touched, so that a falsified envelope or body carries the warning itself.
    this.record(anomaly, this.bodyTx ?? this.currentTx);
  }

  onClose(reason: CloseReason, ts: number): void {
    if (this.closed) return;
    this.now = ts;

    // Replaying held bytes may reach another DATA or AUTH, with fewer bytes held each time.
    while (this.clientMode === 'await') this.decideWithoutReply(ts);
    if ((this.clientMode === 'body' || this.clientMode === 'chunk') && this.bodyTx !== undefined) {
      if (this.clientMode === 'body') this.reportBodyLineEndings(this.bodyTx);
      this.bodyTx.record.bodyComplete = false;
      this.endSink(this.bodyTx, false);
    }
    this.closed = true;
    this.clientMode = 'ignore';

    this.dropAllPending(ts);
    for (const tx of this.openTxs) tx.closed = true;
    this.currentTx = undefined;
    this.emitReady(ts, true);

    this.endUnendedLine(0);
    this.endUnendedLine(1);
    if (this.tooManyAnomalies !== undefined) {
      const dropped = this.anomalyCount - this.limits.maxAnomaliesPerSession;
      this.tooManyAnomalies.detail = `${dropped} further anomalies not recorded`;
    }
    this.info.endTs = ts;
    this.info.closeReason = reason;
    this.info.clientOnly = !this.serverSeen;
    try {
      this.events.session(this.info);
    } catch {
      // The session is over: nothing left to protect, and nothing may escape to the flow table.
    }
  }

  // ---- client direction ----

  private processClient(data: Buffer, ts: number): void {
    let pos = 0;
    while (pos < data.length) {
      switch (this.clientMode) {
        case 'ignore':
          return;

        case 'await': {
          const first = data[pos];
          if (this.awaitReason === 'starttls' && this.heldBytes === 0) {
            if (first === TLS_HANDSHAKE || first === SSL2_RECORD) {
              this.startTls(ts);
              return;
            }
            if (!this.serverSeen || this.awaitUnpaired) {
              // No reply to wait for: the client went on in clear, so the server refused.
              this.endAwait('command');
              continue;
            }
          }
          this.hold(data.subarray(pos), ts);
          return;
        }

        case 'body': {
          const end = this.body.feed(data, pos);
          if (end === -1) return;
          pos = end;
          this.endDataBody(ts);
          break;
        }

        case 'chunk': {
          const take = Math.min(this.chunkRemaining, data.length - pos);
          this.writeBody(data.subarray(pos, pos + take));
          pos += take;
          this.chunkRemaining -= take;
          if (this.chunkRemaining === 0) this.endChunk();
          break;
        }

        default: {
          pos = this.clientLines.next(data, pos);
          const line = this.clientLines.line;
          if (line !== undefined) this.clientLine(line, ts);
          else if (this.clientLines.limitPassed) this.flagUnendedLine(0);
        }
      }
    }
  }

  private clientLine(line: Buffer, ts: number): void {
    const lines = this.clientLines;
    if (lines.truncated) this.lineTooLong(0, lines.rawLength);
    if (this.clientMode === 'sasl') {
      this.saslLine(line, ts);
      return;
    }
    if (this.clientResync) {
      if (!looksLikeCommand(line)) return;
      this.clientResync = false;
    }
    if (lines.bareLf && !this.bareLfReported) {
      this.bareLfReported = true;
      this.anomaly('smtp_bare_lf', 'command line ended with LF alone', 0);
    }
    if (!this.bareCrReported && line.indexOf(CR) !== -1) {
      this.bareCrReported = true;
      this.anomaly('smtp_bare_cr', 'command line contained a CR without LF', 0);
    }
    this.command(line, ts);
  }

  private command(line: Buffer, ts: number): void {
    this.info.commands++;
    this.commandSeen = true;
    const { verb, argStart } = parseCommandLine(line);
    switch (verb) {
      case 'HELO':
      case 'EHLO':
      case 'LHLO': {
        const name = line.toString('utf8', argStart, argStart + MAX_NAME_LENGTH).trim();
        // The name the client claims is recorded even if the server rejects it (as Suricata
        // does), but an empty argument does not replace an earlier name. A line cut to
        // maxLineLength gives no name, because its end is unknown and servers reject it.
        if (name !== '' && !this.clientLines.truncated) {
          this.info.helo = name;
          this.info.heloCommand = verb;
        }
        const entry = this.push('helo', this.currentTx, { heloCommand: verb });
        if (!this.serverSeen) this.resetByHelo(entry, undefined);
        break;
      }
      case 'MAIL':
        this.mailCommand(line.toString('utf8', argStart), ts);
        break;
      case 'RCPT':
        this.rcptCommand(line.toString('utf8', argStart), ts);
        break;
      case 'DATA':
        this.dataCommand(ts);
        break;
      case 'BDAT':
        this.bdatCommand(line.toString('latin1', argStart), ts);
        break;
      case 'RSET': {
        const tx = this.currentTx;
        this.push('rset', tx);
        if (tx !== undefined) {
          tx.clientEnd ??= 'reset';
          this.closeTx(tx);
        }
        break;
      }
      case 'STARTTLS':
        this.awaitReply(this.push('starttls', this.currentTx), 'starttls', ts);
        break;
      case 'AUTH':
        this.authCommand(line, argStart, ts);
        break;
      case '':
        this.anomaly('smtp_unknown_command', this.describeUnknown(line), 0, this.currentTx);
        this.push('other', this.currentTx);
        break;
      default:
        this.push('other', this.currentTx);
    }
    if (verb !== 'BDAT') this.discardBdat = false;
  }

  private mailCommand(arg: string, ts: number): void {
    const previous = this.currentTx;
    if (previous !== undefined) {
      previous.clientEnd ??= 'aborted';
      this.closeTx(previous);
    }
    const tx = this.openTx(ts);
    const path = parsePathArgument(arg, 'FROM');
    if (path === undefined) {
      this.anomaly('smtp_invalid_mail_from', undefined, 0, tx);
    } else {
      tx.record.mailFrom = path.address;
      tx.record.mailParams = path.params;
    }
    this.push('mail', tx);
  }

  private rcptCommand(arg: string, ts: number): void {
    const tx = this.currentTx ?? this.openImplicitTx('RCPT', ts);
    const path = parsePathArgument(arg, 'TO');
    let rcptIndex = -1;
    if (path === undefined) {
      this.anomaly('smtp_invalid_rcpt_to', undefined, 0, tx);
    } else if (tx.record.recipients.length >= this.limits.maxRecipients) {
      tx.extraRecipients++;
    } else {
      rcptIndex = tx.record.recipients.push({ address: path.address, params: path.params }) - 1;
    }
    this.push('rcpt', tx, { rcptIndex });
  }

  private dataCommand(ts: number): void {
    const tx = this.currentTx ?? this.openImplicitTx('DATA', ts);
    if (tx.record.bodyKind === 'bdat') this.anomaly('smtp_mixed_data_bdat', undefined, 0, tx);
    this.awaitReply(this.push('data', tx), 'data', ts);
  }

  private bdatCommand(arg: string, ts: number): void {
    const parsed = parseBdatArgument(arg);
    if (!parsed.ok) {
      // The server rejects it and reads no chunk: the next bytes are a command (Zeek, Postfix).
      // The client still tried to send the body with BDAT, so the transaction records that.
      if (this.currentTx !== undefined) this.currentTx.record.bodyKind ??= 'bdat';
      this.anomaly(parsed.anomaly, parsed.detail, 0, this.currentTx);
      this.push('bdat_invalid', this.currentTx);
      return;
    }

    let tx: TxState | undefined;
    if (this.currentTx !== undefined || !this.discardBdat) {
      tx = this.currentTx ?? this.openImplicitTx('BDAT', ts);
      if (tx.record.bodyKind === 'data') this.anomaly('smtp_mixed_data_bdat', undefined, 0, tx);
      tx.record.bodyKind ??= 'bdat';
      tx.record.bdatChunks++;
      this.openSink(tx);
    }
    this.push('bdat', tx, { last: parsed.last });
    this.bodyTx = tx;
    this.chunkLast = parsed.last;
    this.chunkRemaining = parsed.size;
    if (parsed.size === 0) this.endChunk();
    else this.clientMode = 'chunk';
  }

  private endChunk(): void {
    this.clientMode = 'command';
    const tx = this.bodyTx;
    this.bodyTx = undefined;
    if (tx === undefined || !this.chunkLast) return;
    tx.record.bodyComplete = !tx.bodyGap;
    this.endSink(tx, !tx.bodyGap);
    this.closeTx(tx);
  }

  private startDataBody(tx: TxState): void {
    tx.record.bodyKind ??= 'data';
    this.openSink(tx);
    this.body.start();
    this.bodyTx = tx;
    this.clientMode = 'body';
  }

  private endDataBody(ts: number): void {
    const tx = this.bodyTx;
    this.bodyTx = undefined;
    this.clientMode = 'command';
    if (tx === undefined) return;
    this.reportBodyLineEndings(tx);
    tx.record.bodyComplete = !tx.bodyGap;
    this.endSink(tx, !tx.bodyGap);
    this.push('data_end', tx);
    this.closeTx(tx);
    this.emitReady(ts);
  }

  /** Report the line endings of a DATA body that RFC 5321 section 2.3.8 forbids. */
  private reportBodyLineEndings(tx: TxState): void {
    const body = this.body;
    if (body.bareLfCount > 0) {
      this.anomaly('smtp_bare_lf', `${formatCount(body.bareLfCount, 'body line')} ended with LF alone`, 0, tx);
    }
    if (body.bareLfEnd !== undefined) {
      this.anomaly('smtp_bare_lf_end_of_data', `data ended with ${body.bareLfEnd}`, 0, tx);
    }
    if (body.bareCrCount > 0) {
      const dotLines = body.bareCrDotLines > 0 ? `, ${formatCount(body.bareCrDotLines, '"." line')} next to a bare CR` : '';
      this.anomaly('smtp_bare_cr', `${formatCount(body.bareCrCount, 'bare CR')} in the body${dotLines}`, 0, tx);
    }
  }

  // ---- AUTH ----

  private authCommand(line: Buffer, argStart: number, ts: number): void {
    let end = line.indexOf(0x20, argStart);
    if (end === -1) end = line.length;
    const mechanism = line.toString('latin1', argStart, Math.min(end, argStart + 40)).toUpperCase();
    this.info.authMechanism = mechanism;
    delete this.info.authUser;
    delete this.info.authSuccess;
    this.sasl = { mechanism, responses: 0, remaining: saslResponseCount(mechanism), prompt: undefined };

    let irStart = end + 1;
    while (irStart < line.length && line[irStart] === 0x20) irStart++;
    if (irStart < line.length) {
      const response = line.subarray(irStart);
      // "=" is an empty initial response (RFC 4954 section 4).
      if (!(response.length === 1 && response[0] === 0x3d)) this.saslResponse(response, true);
      else this.sasl.responses++;
      if (this.sasl.remaining !== undefined) this.sasl.remaining--;
      this.clientLines.wipeLine();
    }
    this.awaitReply(this.push('auth', this.currentTx), 'auth', ts);
  }

  private saslLine(line: Buffer, ts: number): void {
    const sasl = this.sasl;
    if (sasl === undefined) {
      this.clientMode = 'command';
      this.command(line, ts);
      return;
    }
    if (line.length === 1 && line[0] === 0x2a) {
      // "*" cancels the exchange; the server replies 501.
      this.sasl = undefined;
      this.awaitReply(this.push('auth', this.currentTx), 'auth', ts);
      return;
    }
    if (!this.serverSeen && sasl.remaining === undefined && !this.isSaslResponse(line)) {
      this.sasl = undefined;
      this.clientMode = 'command';
      this.command(line, ts);
      return;
    }

    this.saslResponse(line, false);
    this.clientLines.wipeLine();
    if (sasl.remaining !== undefined) sasl.remaining--;
    this.awaitReply(this.push('auth', this.currentTx), 'auth', ts);
  }

  /**
   * Handle one SASL client response: read the user name from the response that carries it and
   * drop the rest. For AUTH LOGIN that is the initial response on the AUTH line, or a response
   * to a 334 "Username:" challenge. When the challenge was not seen (client-only capture,
   * replies not paired, an unexpected challenge), no user name is recorded, because the
   * response may be the password.
   */
  private saslResponse(response: Buffer, initial: boolean): void {
    const sasl = this.sasl as SaslState;
    sasl.responses++;
    const prompt = sasl.prompt;
    sasl.prompt = undefined;
    if (sasl.mechanism === 'LOGIN') {
      if (!initial && prompt !== 'user') return;
    } else if (sasl.responses !== 1 || !firstResponseHasUser(sasl.mechanism)) {
      return;
    }
    const decoded = decodeBase64(response);
    if (decoded === undefined) {
      this.anomaly('smtp_auth_decode_failed', `${sasl.mechanism} response`, 0);
      return;
    }
    const user = extractUser(sasl.mechanism, decoded);
    // The decoded bytes may hold a password (PLAIN): overwrite them now.
    decoded.fill(0);
    if (user !== undefined) this.info.authUser = user.substring(0, MAX_NAME_LENGTH);
  }

  /** Client-only guess for mechanisms without a known response count. */
  private isSaslResponse(line: Buffer): boolean {
    const sasl = this.sasl as SaslState;
    if (sasl.responses >= MAX_UNKNOWN_SASL_RESPONSES || !isBase64Line(line)) return false;
    const { verb } = parseCommandLine(line);
    return verb === '' || line.length > verb.length;
  }

  /** Set the client mode after an AUTH step when the server's reply is not available. */
  private continueSaslWithoutReply(): void {
    const sasl = this.sasl;
    const more = sasl !== undefined && (sasl.remaining === undefined || sasl.remaining > 0);
    this.endAwait(more ? 'sasl' : 'command');
  }

  // ---- waiting for the reply that decides the meaning of the next client bytes ----

  private awaitReply(entry: Pending, reason: AwaitReason, ts: number): void {
    this.awaitEntry = entry;
    this.awaitReason = reason;
    this.awaitTx = entry.tx;
    this.clientMode = 'await';
    // DATA, AUTH and STARTTLS never merge, so a queued entry is the last one. An entry that is
    // not queued was counted only, because too many commands were waiting: its reply will not
    // be paired, as in a client-only capture.
    this.awaitUnpaired = this.pending.at(this.pending.size - 1) !== entry;
    const paired = this.serverSeen && !this.awaitUnpaired;
    if (!paired && reason !== 'starttls') this.decideWithoutReply(ts);
  }

  private hold(data: Buffer, ts: number): void {
    this.held.push({ data: Buffer.from(data), ts });
    this.heldBytes += data.length;
    if (this.heldBytes > MAX_HELD_CLIENT_BYTES) {
      if (this.awaitReason === 'data') {
        this.anomaly('smtp_body_before_354', `${this.heldBytes} bytes without a reply to DATA`, 0, this.awaitTx);
      }
      this.decideWithoutReply(ts);
    }
  }

  /** Decide the client mode as in a client-only capture, then read the held bytes in it. */
  private decideWithoutReply(ts: number): void {
    if (this.clientMode !== 'await') return;
    switch (this.awaitReason) {
      case 'data':
        if (this.awaitTx !== undefined && !this.awaitTx.emitted) {
          this.awaitEntry = undefined;
          this.startDataBody(this.awaitTx);
          this.replayHeld();
        } else {
          this.endAwait('command');
        }
        break;
      case 'auth':
        this.continueSaslWithoutReply();
        break;
      case 'starttls':
        this.endAwait('command');
        break;
    }
    this.emitReady(ts);
  }

  private endAwait(mode: ClientMode): void {
    this.awaitEntry = undefined;
    this.awaitTx = undefined;
    this.clientMode = mode;
    this.replayHeld();
  }

  private replayHeld(): void {
    const chunks = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const chunk of chunks) {
      this.processClient(chunk.data, chunk.ts);
      // Held bytes may carry SASL responses: overwrite the copies.
      chunk.data.fill(0);
    }
  }

  // ---- server direction ----

  private processServer(data: Buffer, ts: number): void {
    let pos = 0;
    while (pos < data.length && !this.serverIgnored) {
      pos = this.serverLines.next(data, pos);
      const line = this.serverLines.line;
      if (line !== undefined) this.serverLine(line, ts);
      else if (this.serverLines.limitPassed) this.flagUnendedLine(1);
    }
  }

  private serverLine(line: Buffer, ts: number): void {
    if (this.serverLines.truncated) this.lineTooLong(1, this.serverLines.rawLength);
    const parsed = parseReplyLine(line);
    if (parsed === undefined) {
      if (!this.serverResync) this.anomaly('smtp_invalid_reply', printable(line, 40), 1);
      return;
    }
    this.serverResync = false;
    const assembled = this.replies.add(line, parsed, ts);
    if (assembled === undefined) return;
    if (this.replies.codeMismatch) this.anomaly('smtp_reply_code_mismatch', `first code ${assembled.reply.code}`, 1);
    if (this.replies.cut) this.anomaly('smtp_reply_too_long', `reply ${assembled.reply.code}`, 1);
    this.info.replies++;
    this.info.lastReply = assembled.reply;
    this.reply(assembled, ts);
  }

  private reply(assembled: AssembledReply, ts: number): void {
    const reply = assembled.reply;
    this.realignPending(reply.code);
    const entry = this.pending.takeOne();
    if (entry === undefined) {
      this.unmatchedReply(reply, ts);
      return;
    }
    const tx = entry.tx !== undefined && !entry.tx.emitted ? entry.tx : undefined;
    // An EHLO reply lists extensions and is no outcome of the transaction.
    if (tx !== undefined && entry.kind !== 'helo') tx.record.lastReply = reply;
    const awaited = entry === this.awaitEntry;
    const code = reply.code;

    switch (entry.kind) {
      case 'banner':
        this.info.banner = reply;
        break;
      case 'helo':
        if (code < 300) this.resetByHelo(entry, assembled.lines);
        break;
      case 'mail':
        if (tx !== undefined) {
          tx.record.mailReply = reply;
          if (code >= 400) this.closeTx(tx);
        }
        break;
      case 'rcpt': {
        const recipient = tx?.record.recipients[entry.rcptIndex];
        if (recipient !== undefined) {
          recipient.reply = reply;
          recipient.accepted = code < 300;
        }
        break;
      }
      case 'data':
        this.dataReply(entry, tx, reply, awaited);
        break;
      case 'data_end':
        if (tx !== undefined) tx.endReply = reply;
        break;
      case 'bdat':
        if (tx !== undefined && (entry.last || code >= 400)) {
          tx.endReply ??= reply;
          if (code >= 400) this.rejectBdat(tx);
        }
        break;
      case 'auth':
        this.authReply(reply, awaited);
        break;
      case 'starttls':
        if (code === 220) this.startTls(ts);
        else if (awaited) this.endAwait('command');
        break;
      default:
        break;
    }

    if (entry.tx !== undefined) entry.tx.outstanding--;
    this.emitReady(ts);
  }

  private dataReply(entry: Pending, tx: TxState | undefined, reply: SmtpReply, awaited: boolean): void {
    if (tx !== undefined) tx.record.dataReply = reply;
    if (reply.code < 400) {
      if (!awaited) return;
      this.awaitEntry = undefined;
      if (tx !== undefined) {
        this.startDataBody(tx);
        this.replayHeld();
      } else {
        this.endAwait('command');
      }
      return;
    }

    if (tx !== undefined) {
      tx.endReply = reply;
      this.closeTx(tx);
    }
    if (awaited) {
      this.endAwait('command');
    } else if (this.clientMode === 'body' && this.bodyTx === entry.tx) {
      // The body was guessed before the reply came: the server reads these lines as commands.
      this.anomaly('smtp_data_rejected_during_body', `reply ${reply.code}`, 1, entry.tx);
      if (this.bodyTx !== undefined) {
        this.reportBodyLineEndings(this.bodyTx);
        this.bodyTx.record.bodyComplete = false;
        this.endSink(this.bodyTx, false);
      }
      this.bodyTx = undefined;
      this.clientMode = 'command';
      this.clientResync = true;
    }
  }

  private rejectBdat(tx: TxState): void {
    this.closeTx(tx);
    this.endSink(tx, false);
    tx.record.bodyComplete = false;
    this.discardBdat = true;
  }

  private authReply(reply: SmtpReply, awaited: boolean): void {
    const code = reply.code;
    if (code === 334) {
      // Only an awaited challenge is known to precede the next client response.
      if (this.sasl !== undefined) this.sasl.prompt = awaited && this.sasl.mechanism === 'LOGIN' ? loginPrompt(reply.text) : undefined;
      if (awaited) this.endAwait(this.sasl !== undefined ? 'sasl' : 'command');
      return;
    }
    if (code === 235) this.info.authSuccess = true;
    else if (code >= 400) this.info.authSuccess = false;
    this.sasl = undefined;
    if (awaited) this.endAwait('command');
  }

  private unmatchedReply(reply: SmtpReply, ts: number): void {
    const tx = this.bodyTx;
    if (this.clientMode === 'body' && tx !== undefined) {
      // The server only replies inside a body once it has seen the end of data, or to give up.
      this.anomaly('smtp_reply_during_body', `reply ${reply.code}`, 1, tx);
      this.reportBodyLineEndings(tx);
      tx.record.lastReply = reply;
      tx.endReply = reply;
      tx.record.bodyComplete = false;
      this.endSink(tx, false);
      this.bodyTx = undefined;
      this.clientMode = 'command';
      this.clientResync = true;
      this.closeTx(tx);
      this.emitReady(ts);
      return;
    }
    // RFC 5321 section 3.8: a server may send 421 at any time before it closes.
    if (this.unmatchedExpected || !this.commandSeen || reply.code === 421) return;
    this.anomaly('smtp_unmatched_reply', `reply ${reply.code}`, 1);
  }

  /** Apply an accepted (or unanswered) HELO, EHLO or LHLO: extensions and the envelope reset. */
  private resetByHelo(entry: Pending, replyLines: string[] | undefined): void {
    if (replyLines !== undefined && entry.heloCommand !== 'HELO') {
      this.info.extensions = replyLines.slice(1, MAX_EXTENSIONS + 1).map(formatExtension);
    }
    // HELO and EHLO reset the transaction in progress (RFC 5321 section 4.1.4).
    const tx = entry.tx;
    if (tx !== undefined && !tx.closed) {
      tx.clientEnd ??= 'reset';
      this.closeTx(tx);
    }
  }

  private startTls(ts: number): void {
    this.info.tls = true;
    this.info.tlsMode = 'starttls';
    this.clientMode = 'ignore';
    this.serverIgnored = true;
    for (const chunk of this.held) chunk.data.fill(0);
    this.held = [];
    this.heldBytes = 0;
    this.awaitEntry = undefined;
    // RFC 3207 section 4.2: both sides discard the state from before TLS.
    const tx = this.currentTx;
    if (tx !== undefined) {
      tx.clientEnd ??= 'reset';
      this.closeTx(tx);
    }
    this.dropAllPending(ts);
    this.emitReady(ts);
  }

  // ---- gaps ----

  private clientGap(length: number, ts: number): void {
    if (this.clientMode === 'await') this.decideWithoutReply(ts);
    const tx = this.bodyTx;
    const inBody = (this.clientMode === 'body' || this.clientMode === 'chunk') && tx !== undefined;
    this.anomaly('smtp_content_gap', `${length} client bytes missing`, 0, inBody ? tx : undefined);

    if (this.clientMode === 'body') {
      // NOTE: if the "." line itself was lost, the body runs on until a reply shows its end.
      if (tx !== undefined) tx.bodyGap = true;
      this.body.resumeAfterGap();
      return;
    }
    if (this.clientMode === 'chunk') {
      if (tx !== undefined) tx.bodyGap = true;
      if (length < this.chunkRemaining) {
        this.chunkRemaining -= length;
        return;
      }
      this.chunkRemaining = 0;
      this.endChunk();
    }
    this.endUnendedLine(0);
    this.clientLines.reset();
    this.clientMode = 'command';
    this.sasl = undefined;
    this.clientResync = true;
    // NOTE: replies to commands lost in the gap are recognised only until the next command
    // is read. A reply to a lost command that arrives later is paired with that command.
    this.unmatchedExpected = true;
  }

  private serverGap(length: number): void {
    this.anomaly('smtp_content_gap', `${length} server bytes missing`, 1);
    this.endUnendedLine(1);
    this.serverLines.reset();
    this.replies.reset();
    this.serverResync = true;
    // NOTE: how many replies the gap held is unknown, so the commands waiting for replies are
    // dropped rather than paired with the wrong replies. Their replies stay undefined.
    this.dropAllPending(this.now);
    this.unmatchedExpected = true;
    if (this.clientMode === 'await') this.decideWithoutReply(this.now);
    this.emitReady(this.now);
  }

  // ---- pending commands ----

  /**
   * Queue a command for its reply. Commands whose replies are handled alike merge into one
   * entry with a count (see canMerge), so replies stay paired in order while the number of
   * entries stays small. When maxPendingCommands entries are reached, the queue is compacted.
   * If it is still over half full, new commands are counted only: each is handled at once as
   * a command whose reply is not seen, and its reply is consumed without effect.
   *
   * Returns the entry for the command. awaitReply recognises an entry that is not in the
   * queue and decides without the reply.
   */
  private push(kind: PendingKind, tx: TxState | undefined, fields: Partial<Pending> = {}): Pending {
    const entry: Pending = { kind, tx, rcptIndex: -1, last: false, heloCommand: 'HELO', count: 1, ...fields };
    if (kind !== 'banner') this.unmatchedExpected = false;
    const max = this.limits.maxPendingCommands;
    if (this.pendingBlind && this.pending.size <= max / 2) this.pendingBlind = false;
    if (!this.pendingBlind && this.pending.size >= max && !this.mergesWithTail(entry)) {
      if (this.serverSeen && !this.pendingOverflowReported) {
        this.pendingOverflowReported = true;
        this.anomaly('smtp_too_many_pending_commands', `more than ${max} waiting commands`, 0);
      }
      this.pending.compact(this.awaitEntry);
      this.pendingBlind = this.pending.size > max / 2;
    }
    if (this.pendingBlind) {
      this.pending.append({ kind: 'other', tx: undefined, rcptIndex: -1, last: false, heloCommand: 'HELO', count: 1 });
      this.forgetCommand(entry, this.now);
      return entry;
    }
    if (tx !== undefined) tx.outstanding++;
    return this.pending.append(entry);
  }

  private mergesWithTail(entry: Pending): boolean {
    const tail = this.pending.at(this.pending.size - 1);
    return tail !== undefined && canMerge(tail, entry);
  }

  /**
   * Drop waiting commands whose replies were evidently lost. A missing banner shows as a
   * first reply that no greeting uses. Codes that reply to one kind of command only (334 and
   * 235 to AUTH, 354 to DATA, 220 to the banner or STARTTLS) show which waiting command the
   * reply belongs to when an earlier one is still waiting.
   */
  private realignPending(code: number): void {
    const head = this.pending.at(0);
    if (head === undefined) return;
    if (head.kind === 'banner' && !BANNER_CODES.has(code) && this.pending.size > 1) {
      this.anomaly('smtp_missing_reply', `no greeting before reply ${code}`, 1);
      this.dropPending(this.pending.removeHead() as Pending, this.now);
      this.realignPending(code);
      return;
    }
    const kinds = SINGLE_COMMAND_CODES.get(code);
    if (kinds === undefined || kinds.includes(head.kind)) return;
    let skipped = 0;
    for (let i = 1; i < this.pending.size; i++) {
      skipped += (this.pending.at(i - 1) as Pending).count;
      if (skipped >= REALIGN_WINDOW) return;
      const entry = this.pending.at(i) as Pending;
      if (!kinds.includes(entry.kind)) continue;
      this.anomaly('smtp_missing_reply', `reply ${code} skips ${skipped} waiting commands`, 1);
      for (let j = 0; j < i; j++) this.dropPending(this.pending.removeHead() as Pending, this.now);
      return;
    }
  }

  private dropAllPending(ts: number): void {
    for (let entry = this.pending.removeHead(); entry !== undefined; entry = this.pending.removeHead()) {
      this.dropPending(entry, ts);
    }
  }

  /** Forget the commands of an entry whose replies will not be seen. */
  private dropPending(entry: Pending, ts: number): void {
    if (entry.tx !== undefined) entry.tx.outstanding -= entry.count;
    this.forgetCommand(entry, ts);
  }

  /** Apply what a command does when its reply is not seen. */
  private forgetCommand(entry: Pending, ts: number): void {
    if (entry.kind === 'helo' && this.serverSeen) this.resetByHelo(entry, undefined);
    if (entry === this.awaitEntry) this.decideWithoutReply(ts);
    this.emitReady(ts);
  }

  // ---- transactions ----

  private openTx(ts: number): TxState {
    const tx = createTransaction(this.flow, ++this.depth, ts);
    const record = tx.record;
    if (this.info.helo !== undefined) record.helo = this.info.helo;
    if (this.info.heloCommand !== undefined) record.heloCommand = this.info.heloCommand;
    if (this.info.authSuccess !== false) {
      if (this.info.authMechanism !== undefined) record.authMechanism = this.info.authMechanism;
      if (this.info.authUser !== undefined) record.authUser = this.info.authUser;
    }
    this.currentTx = tx;
    this.openTxs.push(tx);
    if (this.openTxs.length > MAX_OPEN_TRANSACTIONS) {
      const oldest = this.openTxs[0] as TxState;
      oldest.closed = true;
      oldest.outstanding = 0;
      this.emitReady(ts);
    }
    return tx;
  }

  private openImplicitTx(verb: string, ts: number): TxState {
    const tx = this.openTx(ts);
    this.anomaly('smtp_missing_mail_from', `${verb} without MAIL FROM`, 0, tx);
    return tx;
  }

  private closeTx(tx: TxState): void {
    tx.closed = true;
    if (this.currentTx === tx) this.currentTx = undefined;
    this.emitReady(this.now);
  }

  /** Emit transactions from the oldest on while they are settled; with force, all of them. */
  private emitReady(ts: number, force = false): void {
    while (this.openTxs.length > 0) {
      const tx = this.openTxs[0] as TxState;
      const ready = tx.closed && (tx.outstanding <= 0 || !this.serverSeen);
      if (!ready && !force) return;
      this.openTxs.shift();
      this.emit(tx, ts);
    }
  }

  private emit(tx: TxState, ts: number): void {
    if (this.isRejectedStray(tx)) {
      this.dropStray(tx);
      return;
    }
    if (tx === this.bodyTx) {
      this.bodyTx = undefined;
      tx.record.bodyComplete = false;
    }
    if (tx === this.currentTx) this.currentTx = undefined;
    this.endSink(tx, false);
    if (tx.extraRecipients > 0) {
      this.anomaly('smtp_too_many_recipients', `${tx.extraRecipients} beyond ${this.limits.maxRecipients}`, 0, tx);
      tx.record.unlistedRecipients = tx.extraRecipients;
    }
    settleTransaction(tx, ts);
    tx.emitted = true;
    this.info.transactions++;
    try {
      this.events.transaction(tx.record);
    } catch (error) {
      this.anomaly('smtp_event_error', errorMessage(error), undefined);
    }
  }

  /**
   * A RCPT, DATA or BDAT without MAIL FROM that the server refused (503 bad sequence) and that
   * carried no body is a protocol error, not a transaction: it becomes a session anomaly. Without
   * server replies (client-only capture, mid-stream pickup) it stays a transaction, because the
   * MAIL FROM may simply not have been seen.
   */
  private isRejectedStray(tx: TxState): boolean {
    const record = tx.record;
    if (record.mailFrom !== undefined || tx.bodyStarted || !this.serverSeen) return false;
    if (!record.recipients.every((r) => r.accepted === false)) return false;
    return tx.endReply === undefined || tx.endReply.code >= 400;
  }

  private dropStray(tx: TxState): void {
    this.endSink(tx, false);
    tx.emitted = true;
    if (tx === this.currentTx) this.currentTx = undefined;
    const commands = tx.record.recipients.length > 0 ? 'RCPT' : 'DATA or BDAT';
    // The missing MAIL FROM is what the new anomaly reports, so it is not kept twice.
    this.info.anomalies.push(...tx.record.anomalies.filter((a) => a.name !== 'smtp_missing_mail_from'));
    this.anomaly('smtp_command_out_of_sequence', `${commands} without MAIL FROM, rejected by the server`, 0);
    // Depth counts transactions, so the ones after this one move up.
    this.depth--;
    for (const later of this.openTxs) later.record.depth--;
  }

  // ---- body sink ----

  private openSink(tx: TxState): void {
    if (tx.bodyStarted) return;
    tx.bodyStarted = true;
    try {
      tx.sink = this.events.openBody(tx.record);
      tx.sinkOpen = tx.sink !== undefined;
    } catch (error) {
      this.anomaly('smtp_body_sink_error', errorMessage(error), undefined, tx);
    }
  }

  private writeBody(chunk: Buffer): void {
    const tx = this.bodyTx;
    if (tx === undefined || chunk.length === 0) return;
    tx.record.bodyBytes += chunk.length;
    if (!tx.sinkOpen) return;
    try {
      (tx.sink as NonNullable<TxState['sink']>).write(chunk);
    } catch (error) {
      tx.sinkOpen = false;
      this.anomaly('smtp_body_sink_error', errorMessage(error), undefined, tx);
    }
  }

  private endSink(tx: TxState, complete: boolean): void {
    if (!tx.sinkOpen) return;
    tx.sinkOpen = false;
    try {
      (tx.sink as NonNullable<TxState['sink']>).end(complete);
    } catch (error) {
      this.anomaly('smtp_body_sink_error', errorMessage(error), undefined, tx);
    }
  }

  // ---- anomalies ----

  private anomaly(name: SmtpAnomalyName, detail: string | undefined, direction: Direction | undefined, tx?: TxState): Anomaly {
    const anomaly: Anomaly = { name, ts: this.now };
    if (detail !== undefined) anomaly.detail = detail;
    if (direction !== undefined) anomaly.direction = direction;
    this.record(anomaly, tx);
    return anomaly;
  }

  /**
   * Flag a line as soon as it passes maxLineLength without a line end, so that a line that
   * never ends is flagged too. The detail gets the line's length once it ends, at a gap or
   * at close. Session anomalies are emitted at close only, so the update is seen.
   */
  private flagUnendedLine(direction: Direction): void {
    const what = direction === 0 ? 'client line' : 'reply line';
    const detail = `${what} over ${this.limits.maxLineLength} bytes without a line end yet`;
    this.unendedLines[direction] = this.anomaly('smtp_line_too_long', detail, direction);
  }

  /** Flag a line that was cut to maxLineLength, or complete the anomaly raised while it ran on. */
  private lineTooLong(direction: Direction, length: number): void {
    const what = direction === 0 ? 'client line' : 'reply line';
    const detail = `${what} of ${length} bytes`;
    const unended = this.unendedLines[direction];
    if (unended === undefined) {
      this.anomaly('smtp_line_too_long', detail, direction);
      return;
    }
    unended.detail = detail;
    this.unendedLines[direction] = undefined;
  }

  /** Complete the anomaly of a long line that a gap or the end of the connection cut off. */
  private endUnendedLine(direction: Direction): void {
    const unended = this.unendedLines[direction];
    if (unended === undefined) return;
    const what = direction === 0 ? 'client line' : 'reply line';
    const length = (direction === 0 ? this.clientLines : this.serverLines).partialLength;
    unended.detail = `${what} of at least ${length} bytes without a line end`;
    this.unendedLines[direction] = undefined;
  }

  private record(anomaly: Anomaly, tx: TxState | undefined): void {
    this.anomalyCount++;
    if (this.anomalyCount > this.limits.maxAnomaliesPerSession) {
      if (this.tooManyAnomalies === undefined) {
        this.tooManyAnomalies = { name: 'smtp_too_many_anomalies', ts: anomaly.ts };
        this.info.anomalies.push(this.tooManyAnomalies);
      }
      return;
    }
    if (tx !== undefined && !tx.emitted) tx.record.anomalies.push(anomaly);
    else this.info.anomalies.push(anomaly);
  }

  /**
   * Return the anomaly detail for an unknown command: its length and whether it is printable
   * ASCII, never its text. A SASL response read as a command (capture started after AUTH, or
   * the AUTH command lost) is a base64 credential, and a short one looks like any other word.
   */
  private describeUnknown(line: Buffer): string {
    if (line.length === 0) return 'empty line';
    let printableAscii = true;
    for (let i = 0; i < line.length; i++) {
      const byte = line[i] as number;
      if (byte < 0x20 || byte >= 0x7f) {
        printableAscii = false;
        break;
      }
    }
    return `${line.length}-byte line, ${printableAscii ? 'printable ASCII' : 'not printable ASCII'}`;
  }
}

/** "size 10240000" becomes "SIZE 10240000": keyword upper-case, parameters as sent. */
function formatExtension(line: string): string {
  const trimmed = line.trim();
  const space = trimmed.indexOf(' ');
  if (space === -1) return trimmed.toUpperCase();
  return trimmed.substring(0, space).toUpperCase() + trimmed.substring(space);
}

/** Printable ASCII of the start of a line, other bytes as \xNN. */
function printable(line: Buffer, max: number): string {
  let text = '';
  const end = Math.min(line.length, max);
  for (let i = 0; i < end; i++) {
    const byte = line[i] as number;
    text += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '\\x' + byte.toString(16).padStart(2, '0');
  }
  return line.length > max ? text + '...' : text;
}

/** "1 bare CR", "2 bare CRs". */
function formatCount(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
