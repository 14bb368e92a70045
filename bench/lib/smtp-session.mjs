// Builds one SMTP session as TCP packets plus the transactions a correct parser must report.
import { createHash } from 'node:crypto';
import { formatIp } from './network.mjs';
import { TcpConversation } from './tcp-conversation.mjs';

const FIRST_NAMES = ['anna', 'ben', 'clara', 'david', 'emma', 'felix', 'greta', 'hugo', 'ida', 'jonas', 'lena', 'max', 'nora', 'oskar', 'paula'];
const LAST_NAMES = ['schmidt', 'meyer', 'weber', 'fischer', 'wagner', 'becker', 'hoffmann', 'koch', 'richter', 'klein'];
const DOMAINS = ['example.com', 'example.org', 'partner.example', 'customer.example', 'mail.example.net'];
const WORDS = (
  'the invoice report meeting schedule please find attached regards thanks update project budget ' +
  'quarter review printer scan document order shipment delivery contract draft version final status ' +
  'server backup alert disk usage weekly monthly summary team customer request ticket'
).split(' ');
const PLAIN_SUBJECTS = ['Weekly report', 'Invoice 2023-%d', 'Scan from printer', 'Backup job finished', 'Meeting notes %d', 'Re: order %d'];
/** Subjects with non-ASCII text, sent RFC 2047 encoded; the decoded form is the expected value. */
const UNICODE_SUBJECTS = ['Rechnung Nr. %d – Zahlungserinnerung für März', 'Résumé de la réunion %d', 'Отчёт за неделю %d', '会議のお知らせ %d', 'Ärger mit Drucker %d'];
const ATTACHMENT_TYPES = [
  ['application/pdf', 'pdf'],
  ['image/jpeg', 'jpg'],
  ['application/zip', 'zip'],
  ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'xlsx'],
];
const EHLO_EXTENSIONS = ['PIPELINING', 'SIZE 10240000', 'VRFY', 'ETRN', 'STARTTLS', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8'];
const QUEUE_ID_CHARS = '0123456789ABCDEF';

/** Probabilities of the session and message variants. */
export const SESSION_MIX = {
  starttls: 0.06,
  pipelined: 0.25,
  secondTransaction: 0.08,
  rejectRecipient: 0.1,
  attachment: 0.3,
  encodedSubject: 0.35,
  dotLine: 0.15,
  retransmission: 0.05,
  outOfOrder: 0.05,
};

function address(rng, domain) {
  return `${rng.pick(FIRST_NAMES)}.${rng.pick(LAST_NAMES)}@${domain ?? rng.pick(DOMAINS)}`;
}

function queueId(rng) {
  let id = '';
  const length = rng.int(10, 12);
  for (let i = 0; i < length; i++) id += QUEUE_ID_CHARS[rng.int(0, 15)];
  return id;
}

function textLines(rng, count) {
  const lines = [];
  for (let i = 0; i < count; i++) {
    const words = [];
    const n = rng.int(3, 12);
    for (let j = 0; j < n; j++) words.push(rng.pick(WORDS));
    lines.push(words.join(' '));
  }
  return lines;
}

function encodeSubject(rng, text) {
  if (rng.chance(0.5)) return `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
  // Q encoding (RFC 2047 section 4.2): bytes outside printable ASCII, "=", "?", "_" as =XX; space as "_".
  let encoded = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte === 0x20) encoded += '_';
    else if (byte > 0x20 && byte < 0x7f && byte !== 0x3d && byte !== 0x3f && byte !== 0x5f) encoded += String.fromCharCode(byte);
    else encoded += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `=?UTF-8?Q?${encoded}?=`;
}

function base64Lines(data) {
  const text = data.toString('base64');
  const lines = [];
  for (let i = 0; i < text.length; i += 76) lines.push(text.slice(i, i + 76));
  return lines;
}

/**
 * Builds the message for one transaction. Returns the dot-stuffed wire form ending in
 * "\r\n.\r\n", the size of the message after dot-unstuffing, and the values a parser should extract.
 */
function buildMessage(rng, pool, stats, sender, recipients, tsMicros) {
  const n = rng.int(1, 99999);
  let subject;
  let subjectHeader;
  if (rng.chance(SESSION_MIX.encodedSubject)) {
    subject = rng.pick(UNICODE_SUBJECTS).replace('%d', n);
    subjectHeader = encodeSubject(rng, subject);
    stats.encodedSubjects++;
  } else {
    subject = rng.pick(PLAIN_SUBJECTS).replace('%d', n);
    subjectHeader = subject;
  }
  const messageId = `${rng.u32().toString(16)}.${rng.u32().toString(16)}@corp.example`;
  const date = new Date(tsMicros / 1000).toUTCString().replace('GMT', '+0000');
  const headers = [
    `From: ${sender.split('@')[0].replace('.', ' ')} <${sender}>`,
    `To: ${recipients.join(', ')}`,
    `Subject: ${subjectHeader}`,
    `Date: ${date}`,
    `Message-ID: <${messageId}>`,
    'MIME-Version: 1.0',
  ];

  const text = textLines(rng, rng.int(3, 40));
  if (rng.chance(SESSION_MIX.dotLine)) text.splice(rng.int(0, text.length), 0, '.hidden line that starts with a dot');
  const attachments = [];
  let body;
  if (rng.chance(SESSION_MIX.attachment)) {
    const boundary = `----=_Part_${rng.u32().toString(16)}`;
    const [mimeType, extension] = rng.pick(ATTACHMENT_TYPES);
    const data = pool.bytes(rng.int(1024, 12 * 1024));
    const name = `document-${rng.int(1, 9999)}.${extension}`;
    attachments.push({ name, mimeType, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    stats.messagesWithAttachment++;
    headers.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
    body = [
      'This is a multi-part message in MIME format.',
      '',
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      ...text,
      '',
      `--${boundary}`,
      `Content-Type: ${mimeType}; name="${name}"`,
      `Content-Disposition: attachment; filename="${name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      ...base64Lines(data),
      '',
      `--${boundary}--`,
    ];
  } else {
    headers.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit');
    body = text;
  }
  const lines = [...headers, '', ...body];
  const message = `${lines.join('\r\n')}\r\n`;
  const stuffed = lines.map((line) => (line.startsWith('.') ? `.${line}` : line)).join('\r\n');
  return {
    wire: Buffer.from(`${stuffed}\r\n.\r\n`, 'utf8'),
    bodyBytes: Buffer.byteLength(message, 'utf8'),
    subject,
    messageId,
    attachments,
  };
}

/**
 * Builds one SMTP session starting at startMicros. Returns the conversation and the expected
 * transaction records; updates the counters in stats.
 */
export function buildSmtpSession(rng, pool, network, stats, sessionIndex, startMicros) {
  const host = network.hosts[rng.int(0, network.hosts.length - 1)];
  const server = rng.chance(0.8) ? network.relay : rng.pick(network.mailServers);
  const serverPort = [25, 587, 2525][rng.weighted([75, 20, 5])];
  const useIpv6 = rng.chance(0.1);
  const endpoint = network.endpoint(host, server, serverPort, useIpv6);
  const rtt = server.local ? rng.int(200, 3000) : rng.int(10000, 150000);
  const conv = new TcpConversation(rng, endpoint, startMicros, rtt);
  const clientName = `${host.name}.corp.example`;
  const pipelined = rng.chance(SESSION_MIX.pipelined);
  const starttls = !pipelined && rng.chance(SESSION_MIX.starttls / (1 - SESSION_MIX.pipelined));

  stats.sessions++;
  stats.sessionsByPort[serverPort]++;
  if (endpoint.vlan) stats.vlanSessions++;
  if (useIpv6) stats.ipv6Sessions++;

  const sendClient = (text) => conv.send(0, Buffer.from(text, 'utf8'));
  const sendServer = (text) => conv.send(1, Buffer.from(text, 'utf8'));
  // Server times in microseconds: greeting delay, recipient lookups and queueing take longest.
  const serverTurn = (min = 50, max = 5000) => conv.waitForServer(rng.int(min, max));
  const clientTurn = () => conv.waitForClient(rng.int(50, 3000));

  conv.handshake();
  conv.waitForServer(rng.int(1000, 500000));
  sendServer(`220 ${server.name} ESMTP Postfix\r\n`);
  clientTurn();
  sendClient(`EHLO ${clientName}\r\n`);
  serverTurn();
  const ehloLines = [server.name, ...EHLO_EXTENSIONS];
  sendServer(ehloLines.map((line, i) => `250${i === ehloLines.length - 1 ? ' ' : '-'}${line}\r\n`).join(''));

  if (starttls) {
    stats.starttlsSessions++;
    clientTurn();
    sendClient('STARTTLS\r\n');
    serverTurn();
    sendServer('220 2.0.0 Ready to start TLS\r\n');
    clientTurn();
    // Random bytes behind TLS record headers: the parser must stop at STARTTLS and skip them.
    conv.send(0, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), pool.bytes(512)]));
    serverTurn();
    conv.send(1, Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0x10, 0x00]), pool.bytes(rng.int(3000, 5000))]));
    clientTurn();
    conv.send(0, pool.bytes(rng.int(2000, 12000)));
    serverTurn();
    conv.send(1, pool.bytes(rng.int(60, 200)));
    conv.closeFromServer();
    return { conv, transactions: [] };
  }

  if (pipelined) stats.pipelinedSessions++;
  const transactions = [];
  const transactionCount = rng.chance(SESSION_MIX.secondTransaction) ? 2 : 1;
  let bodySegments = [];
  for (let depth = 1; depth <= transactionCount; depth++) {
    const sender = address(rng, 'corp.example');
    const recipientCount = 1 + rng.weighted([50, 25, 12, 8, 5]);
    const recipients = [];
    for (let i = 0; i < recipientCount; i++) recipients.push(address(rng));
    const accepted = recipients.map(() => !rng.chance(SESSION_MIX.rejectRecipient));
    const anyAccepted = accepted.includes(true);
    const rcptReplies = recipients.map((r, i) =>
      accepted[i] ? '250 2.1.5 Ok\r\n' : `550 5.1.1 <${r}>: Recipient address rejected: User unknown in virtual mailbox table\r\n`,
    );
    const message = anyAccepted ? buildMessage(rng, pool, stats, sender, recipients, conv.t) : undefined;
    const mailCommand = `MAIL FROM:<${sender}>${message ? ` SIZE=${message.bodyBytes}` : ''}\r\n`;
    const rcptCommands = recipients.map((r) => `RCPT TO:<${r}>\r\n`);
    const id = queueId(rng);

    stats.transactions++;
    stats.recipientsAccepted += accepted.filter(Boolean).length;
    stats.recipientsRejected += accepted.filter((a) => !a).length;

    clientTurn();
    if (pipelined) {
      // RFC 2920: MAIL, RCPT and DATA go in one group; the replies come back in one group.
      sendClient(mailCommand + rcptCommands.join('') + 'DATA\r\n');
      serverTurn(1000, 80000);
      const dataReply = anyAccepted ? '354 End data with <CR><LF>.<CR><LF>\r\n' : '554 5.5.1 Error: no valid recipients\r\n';
      sendServer('250 2.1.0 Ok\r\n' + rcptReplies.join('') + dataReply);
    } else {
      sendClient(mailCommand);
      serverTurn();
      sendServer('250 2.1.0 Ok\r\n');
      for (let i = 0; i < recipients.length; i++) {
        clientTurn();
        sendClient(rcptCommands[i]);
        serverTurn(1000, 80000);
        sendServer(rcptReplies[i]);
      }
      if (anyAccepted) {
        clientTurn();
        sendClient('DATA\r\n');
        serverTurn();
        sendServer('354 End data with <CR><LF>.<CR><LF>\r\n');
      }
    }

    if (message) {
      clientTurn();
      bodySegments = conv.send(0, message.wire);
      serverTurn(20000, 800000);
      sendServer(`250 2.0.0 Ok: queued as ${id}\r\n`);
      stats.transactionsCompleted++;
    } else {
      stats.transactionsRejected++;
    }

    transactions.push({
      session: sessionIndex,
      depth,
      ts: startMicros / 1e6,
      client: `${formatIp(endpoint.clientIp)}:${endpoint.clientPort}`,
      server: `${formatIp(endpoint.serverIp)}:${endpoint.serverPort}`,
      vlan: endpoint.vlan || undefined,
      helo: clientName,
      mailFrom: sender,
      recipientsAccepted: recipients.filter((_, i) => accepted[i]),
      recipientsRejected: recipients.filter((_, i) => !accepted[i]),
      status: message ? 'completed' : 'rejected',
      queueId: message ? id : undefined,
      subject: message?.subject,
      messageId: message?.messageId,
      bodyBytes: message?.bodyBytes ?? 0,
      attachments: message?.attachments ?? [],
    });
  }

  clientTurn();
  sendClient('QUIT\r\n');
  serverTurn();
  sendServer('221 2.0.0 Bye\r\n');
  conv.closeFromServer();

  if (bodySegments.length >= 2 && rng.chance(SESSION_MIX.outOfOrder)) {
    const i = rng.int(0, bodySegments.length - 2);
    conv.swapTimes(bodySegments[i], bodySegments[i + 1]);
    stats.outOfOrderSwaps++;
  }
  if (bodySegments.length >= 1 && rng.chance(SESSION_MIX.retransmission)) {
    if (conv.retransmit(rng.pick(bodySegments))) stats.retransmittedSegments++;
  }
  return { conv, transactions };
}
