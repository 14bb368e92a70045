/**
 * End-to-end tests of `mailtap read`: input formats (pcap, gzip, stdin, pcapng), broken inputs,
 * output formats, terminal safety, command-line errors, the summary on stderr and closed pipes.
 * Captures come from captures/ or are built here with pcap-builder.ts.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CLI, REPO, readRecords, runCli, type Fields } from './cli.js';
import { PcapBuilder, addSmtpConnection, type Endpoint, type SmtpStep } from './pcap-builder.js';

const require = createRequire(import.meta.url);
const pcapParser = require('pcap-parser') as { parse(input: string): NodeJS.EventEmitter };

const OFFICE = join(REPO, 'captures', 'office.pcap');
const PRINTER = join(REPO, 'captures', 'printer.pcap');

const workDir = mkdtempSync(join(tmpdir(), 'mailtap-cli-read-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

// Reference runs of the plain files. Every other input form must give exactly these records.
const officeRecords = readRecords(OFFICE);
const printerRecords = readRecords(PRINTER);

/** One packet record of a classic pcap file, located by walking the record headers. */
interface PcapRecord {
  /** Byte offset of the 16-byte record header in the file. */
  offset: number;
  frame: Buffer;
}

/** TCP fields of an Ethernet/IPv4 frame. */
interface TcpInfo {
  sourcePort: number;
  destinationPort: number;
  flags: number;
  payload: Buffer;
}

/** Walks a little-endian classic pcap file by its record headers. */
function pcapRecords(file: Buffer): PcapRecord[] {
  assert.equal(file.readUInt32LE(0), 0xa1b2c3d4, 'expected a little-endian microsecond pcap');
  const records: PcapRecord[] = [];
  let offset = 24;
  while (offset < file.length) {
    const capturedLength = file.readUInt32LE(offset + 8);
    records.push({ offset, frame: file.subarray(offset + 16, offset + 16 + capturedLength) });
    offset += 16 + capturedLength;
  }
  assert.equal(offset, file.length, 'the last record ends at the end of the file');
  return records;
}

/** Returns the TCP fields of an untagged Ethernet/IPv4/TCP frame, or undefined for other frames. */
function tcpInfo(frame: Buffer): TcpInfo | undefined {
  if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800 || frame[23] !== 6) return undefined;
  const ipHeaderLength = (frame[14] & 0x0f) * 4;
  const ipEnd = 14 + frame.readUInt16BE(16);
  const tcp = 14 + ipHeaderLength;
  const tcpHeaderLength = (frame[tcp + 12] >> 4) * 4;
  return {
    sourcePort: frame.readUInt16BE(tcp),
    destinationPort: frame.readUInt16BE(tcp + 2),
    flags: frame[tcp + 13],
    payload: frame.subarray(tcp + tcpHeaderLength, ipEnd),
  };
}

const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

function isSyn(info: TcpInfo | undefined): boolean {
  return info !== undefined && (info.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
}

/** Counts the packets of a classic pcap file with pcap-parser, an independent reader. */
function countPackets(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let count = 0;
    const parser = pcapParser.parse(file);
    parser.on('packet', () => count++);
    parser.on('error', reject);
    parser.on('end', () => resolve(count));
  });
}

/** Parses the counters of the summary that `mailtap read` writes to stderr. */
function summaryCounts(stderr: string): Record<string, number> {
  const counts: Record<string, number> = {};
  const patterns: Record<string, RegExp> = {
    packets: /([\d,]+) packets,/,
    flows: /([\d,]+) flows/,
    sessions: /([\d,]+) sessions/,
    transactions: /([\d,]+) transactions/,
    records: /([\d,]+) records/,
    anomalies: /([\d,]+) anomalies/,
  };
  for (const [name, pattern] of Object.entries(patterns)) {
    const match = pattern.exec(stderr);
    assert.ok(match, `summary has no ${name} count: ${stderr}`);
    counts[name] = Number(match[1].replace(/,/g, ''));
  }
  return counts;
}

function writeTemp(name: string, data: Buffer): string {
  const path = join(workDir, name);
  writeFileSync(path, data);
  return path;
}

const CLIENT: Endpoint = { mac: '02:00:00:00:00:01', ip: '192.0.2.10', port: 40000 };
const SERVER_MAC = '02:00:00:00:00:02';
const SERVER_IP = '192.0.2.25';
const START_MICROS = 1_700_000_000_000_000;

/** Returns the steps of a complete SMTP session with one message, with ehlo and subject sent as UTF-8. */
function smtpSteps(ehlo: string, subject: string): SmtpStep[] {
  const message =
    'From: sender@example.com\r\n' +
    'To: rcpt@example.com\r\n' +
    `Subject: ${subject}\r\n` +
    'Message-ID: <built@example.com>\r\n' +
    '\r\n' +
    'Hello.\r\n' +
    '.\r\n';
  return [
    { server: '220 mx.example ESMTP\r\n' },
    { client: Buffer.from(`EHLO ${ehlo}\r\n`, 'utf8') },
    { server: '250-mx.example\r\n250 PIPELINING\r\n' },
    { client: 'MAIL FROM:<sender@example.com>\r\n' },
    { server: '250 2.1.0 Ok\r\n' },
    { client: 'RCPT TO:<rcpt@example.com>\r\n' },
    { server: '250 2.1.5 Ok\r\n' },
    { client: 'DATA\r\n' },
    { server: '354 End data with <CR><LF>.<CR><LF>\r\n' },
    { client: Buffer.from(message, 'utf8') },
    { server: '250 2.0.0 Ok: queued as BUILT1\r\n' },
    { client: 'QUIT\r\n' },
    { server: '221 2.0.0 Bye\r\n' },
  ];
}

/** Writes a capture of one SMTP session to serverPort and returns its path. */
function buildSmtpCapture(name: string, serverPort: number, steps: SmtpStep[]): string {
  const builder = new PcapBuilder();
  addSmtpConnection(builder, CLIENT, { mac: SERVER_MAC, ip: SERVER_IP, port: serverPort }, START_MICROS, steps);
  return writeTemp(name, builder.toBuffer());
}

describe('truncated capture', () => {
  const original = readFileSync(PRINTER);
  const records = pcapRecords(original);
  // The cut goes into the first full-size data segment after the last SYN, so the last session
  // is cut inside its message and every session before it is complete.
  let lastSyn = records.length - 1;
  while (lastSyn > 0 && !isSyn(tcpInfo(records[lastSyn].frame))) lastSyn--;
  const cutRecord = records.slice(lastSyn).find((r) => (tcpInfo(r.frame)?.payload.length ?? 0) >= 1000);
  assert.ok(cutRecord, 'printer.pcap has a data segment after its last SYN');
  const cutSession = tcpInfo(records[lastSyn].frame) as TcpInfo;
  const file = writeTemp('printer-cut.pcap', original.subarray(0, cutRecord.offset + 16 + 100));
  const result = runCli(['read', file]);

  test('exits with status 1', () => {
    assert.equal(result.status, 1);
  });

  test('names file, offset and code', () => {
    assert.match(result.stderr, /MAILTAP_ERR_TRUNCATED/);
    assert.ok(result.stderr.includes(file), `stderr names ${file}: ${result.stderr}`);
    assert.ok(
      result.stderr.includes(`byte offset ${cutRecord.offset} `),
      `stderr names byte offset ${cutRecord.offset}: ${result.stderr}`,
    );
  });

  test('keeps sessions completed before the cut', () => {
    const complete = printerRecords.filter((r) => r.source.port !== cutSession.sourcePort);
    assert.ok(complete.length > 0, 'printer.pcap has a session before its last one');
    for (const record of complete) {
      const found = result.records.find((r) => r.event.id === record.event.id);
      assert.deepEqual(found, record, `record ${record.event.id} of the complete session`);
    }
  });

  test('reports the cut session unfinished', () => {
    const cut = result.records.filter((r) => r.source.port === cutSession.sourcePort);
    for (const record of cut) {
      assert.notEqual(record.smtp.status, 'completed', 'the cut transaction is not completed');
      assert.equal(record.smtp.queue_id, undefined, 'the reply with the queue id lies after the cut');
    }
  });
});

describe('unreadable inputs', () => {
  const garbage = writeTemp('garbage.pcap', Buffer.from('This is a text file, not a packet capture.\n'.repeat(4)));
  const missing = join(workDir, 'does-not-exist.pcap');

  test('garbage magic gives MAILTAP_ERR_FORMAT', () => {
    const result = runCli(['read', garbage]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /MAILTAP_ERR_FORMAT/);
    assert.ok(result.stderr.includes(garbage), `stderr names ${garbage}: ${result.stderr}`);
    assert.equal(result.records.length, 0);
  });

  test('missing file gives MAILTAP_ERR_OPEN', () => {
    const result = runCli(['read', missing]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /MAILTAP_ERR_OPEN/);
    assert.ok(result.stderr.includes(missing), `stderr names ${missing}: ${result.stderr}`);
    assert.equal(result.records.length, 0);
  });

  test('missing file before a good one', () => {
    const result = runCli(['read', '--quiet', missing, OFFICE]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /MAILTAP_ERR_OPEN/);
    assert.deepEqual(result.records, officeRecords);
  });

  test('garbage file after a good one', () => {
    const result = runCli(['read', '--quiet', PRINTER, garbage]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /MAILTAP_ERR_FORMAT/);
    assert.deepEqual(result.records, printerRecords);
  });
});

describe('input forms', () => {
  const plain = readFileSync(OFFICE);

  test('gzip file equals plain file', () => {
    const file = writeTemp('office.pcap.gz', gzipSync(plain));
    assert.deepEqual(readRecords(file), officeRecords);
  });

  test('stdin equals plain file', () => {
    const result = runCli(['read', '--quiet', '-'], plain);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.records, officeRecords);
  });

  test('gzip on stdin equals plain file', () => {
    const result = runCli(['read', '--quiet', '-'], gzipSync(readFileSync(PRINTER)));
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.records, printerRecords);
  });

  for (const [name, source, expected] of [
    ['office', OFFICE, officeRecords],
    ['printer', PRINTER, printerRecords],
  ] as const) {
    test(`pcapng equals pcap (${name})`, (t) => {
      const converted = join(workDir, `${name}.pcapng`);
      const editcap = spawnSync('editcap', ['-F', 'pcapng', source, converted], { encoding: 'utf8' });
      if (editcap.error) {
        t.skip(`editcap not found (Debian package wireshark-common, installed with tshark): ${editcap.error.message}`);
        return;
      }
      assert.equal(editcap.status, 0, editcap.stderr);
      assert.equal(readFileSync(converted).readUInt32LE(0), 0x0a0d0d0a, 'editcap wrote a pcapng section header');
      assert.deepEqual(readRecords(converted), expected);
    });
  }
});

describe('table format', () => {
  const result = runCli(['read', '--quiet', '--format', 'table', OFFICE]);
  const lines = result.stdout.split('\n');

  test('exits with status 0', () => {
    assert.equal(result.status, 0, result.stderr);
  });

  test('header line then one row per record', () => {
    assert.equal(lines.at(-1), '', 'output ends with a newline');
    const rows = lines.slice(1, -1);
    assert.match(lines[0], /^TIME +CLIENT +SERVER +HELO +MAIL FROM +RCPT TO +SUBJECT +ATTACHMENTS +REPLY$/);
    assert.equal(rows.length, officeRecords.length);
    rows.forEach((row, i) => {
      const record = officeRecords[i];
      const client = `${record.source.ip}:${record.source.port}`;
      assert.ok(row.includes(client), `row ${i + 1} shows client ${client}: ${row}`);
    });
  });

  test('rows show envelope and reply', () => {
    const rejected = lines.find((line) => line.includes('10.99.0.21:44268'));
    assert.ok(rejected, 'a row for office-2');
    // The RCPT TO column is 28 characters wide, so "(1 rejected)" is cut to "(1 reje…".
    assert.ok(rejected.includes('bob@corp.example +1 (1 reje'), rejected);
    assert.ok(rejected.includes('250 2.0.0 Ok: queued as 83F3220C307'), rejected);
    const starttls = lines.find((line) => line.includes('10.99.0.21:34260'));
    assert.ok(starttls?.includes('(starttls)'), `the STARTTLS session shows its TLS mode: ${starttls}`);
  });
});

describe('terminal safety', () => {
  // A screen clear, a window title change ended by BEL, a C1 CSI and a right-to-left override.
  const hostile = '\x1b[2J\x1b]0;pwned\x07\u009b31m\u202e';
  const ehlo = `${hostile}evil.example`;
  const subject = `\u202eexe.fdp ${hostile} invoice`;
  const file = buildSmtpCapture('hostile.pcap', 25, smtpSteps(ehlo, subject));
  const forbidden: [string, string][] = [
    ['ESC', '\x1b'],
    ['BEL', '\x07'],
    ['C1 CSI', '\u009b'],
    ['RIGHT-TO-LEFT OVERRIDE', '\u202e'],
  ];

  test('table shows escapes, not controls', () => {
    const result = runCli(['read', '--quiet', '--format', 'table', file]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.split('\n').length, 3, 'header, one row, final newline');
    for (const [name, char] of forbidden) {
      assert.ok(!result.stdout.includes(char), `table output contains ${name}`);
    }
    assert.ok(result.stdout.includes('\\x1b[2J'), `table output shows \\x1b: ${result.stdout}`);
    assert.ok(result.stdout.includes('\\u202eexe.fdp'), `table output shows \\u202e: ${result.stdout}`);
  });

  test('JSON escapes controls, keeps text', () => {
    const result = runCli(['read', '--quiet', file]);
    assert.equal(result.status, 0, result.stderr);
    for (const [name, char] of forbidden) {
      assert.ok(!result.stdout.includes(char), `JSON output contains ${name}`);
    }
    assert.equal(result.records.length, 1);
    assert.equal(result.records[0].smtp.helo, ehlo);
    assert.equal(result.records[0].email.subject, subject);
  });
});

describe('usage errors', () => {
  const cases: { args: string[]; message: RegExp }[] = [
    { args: ['read'], message: /missing capture file/ },
    { args: ['read', '--bogus', OFFICE], message: /--bogus/ },
    { args: ['read', '--format', 'xml', OFFICE], message: /invalid --format "xml"/ },
    { args: ['read', '--ports', '70000', OFFICE], message: /invalid port "70000" in --ports/ },
    { args: ['read', '--ports', '25,x', OFFICE], message: /invalid port "x" in --ports/ },
    { args: ['read', '--tui', '-'], message: /the capture cannot come from "-"/ },
    // runCli gives the child a pipe, not a terminal, as stdout.
    { args: ['read', '--tui', OFFICE], message: /--tui needs a terminal on stdout/ },
    { args: ['frobnicate'], message: /unknown command "frobnicate"/ },
  ];
  for (const { args, message } of cases) {
    test(`exit 2 for ${args.join(' ').replace(REPO + '/', '')}`, () => {
      const result = runCli(args);
      assert.equal(result.status, 2);
      assert.match(result.stderr, message);
      // A mistake in read's options points at read's own help.
      const help = args[0] === 'read' ? /Run "mailtap read --help"/ : /Run "mailtap --help"/;
      assert.match(result.stderr, help);
      assert.equal(result.stdout, '');
    });
  }

  test('--help exits 0 with usage', () => {
    const result = runCli(['read', '--help']);
    assert.equal(result.status, 0);
    assert.match(result.stdout, /^Usage: mailtap read \[options\] FILE\.\.\./);
    assert.match(result.stdout, /--ports LIST/);
    assert.equal(result.stderr, '');
  });
});

describe('--ports', () => {
  const file = buildSmtpCapture('port-2526.pcap', 2526, smtpSteps('client.example', 'On another port'));

  test('port 2526 ignored by default', () => {
    assert.deepEqual(readRecords(file), []);
  });

  test('port 2526 parsed when listed', () => {
    const records = readRecords(file, ['--ports', '2526']);
    assert.equal(records.length, 1);
    assert.equal(records[0].destination.port, 2526);
    assert.equal(records[0].smtp.helo, 'client.example');
    assert.equal(records[0].smtp.mail_from, 'sender@example.com');
    assert.deepEqual(records[0].smtp.rcpt_to, ['rcpt@example.com']);
    assert.equal(records[0].smtp.queue_id, 'BUILT1');
    assert.equal(records[0].email.subject, 'On another port');
  });
});

describe('summary on stderr', () => {
  test('counts match both captures', async () => {
    const result = runCli(['read', OFFICE, PRINTER]);
    assert.equal(result.status, 0, result.stderr);
    const counts = summaryCounts(result.stderr);

    // The expected figures come from other readers. pcap-parser counts the packets, SYNs to an
    // SMTP port count flows and sessions, and client segments that start with MAIL FROM count
    // transactions (office-3's MAIL FROM is inside TLS and so is not counted).
    let syns = 0;
    let mailCommands = 0;
    for (const path of [OFFICE, PRINTER]) {
      for (const record of pcapRecords(readFileSync(path))) {
        const info = tcpInfo(record.frame);
        if (!info || ![25, 587, 2525].includes(info.destinationPort)) continue;
        if (isSyn(info)) syns++;
        if (info.payload.subarray(0, 10).toString('latin1').toUpperCase() === 'MAIL FROM:') mailCommands++;
      }
    }
    const packets = (await countPackets(OFFICE)) + (await countPackets(PRINTER));

    assert.equal(counts.packets, packets, 'packets');
    assert.equal(counts.flows, syns, 'flows');
    assert.equal(counts.sessions, syns, 'sessions');
    assert.equal(counts.transactions, mailCommands, 'transactions');
    assert.equal(counts.records, result.records.length, 'records');
    assert.equal(counts.anomalies, 0, 'anomalies in clean captures');
  });

  test('anomalies counted', () => {
    // RCPT before MAIL FROM, rejected with 503, in an otherwise clean session. src/smtp/anomalies.ts
    // documents two anomalies for it: the implicit transaction opened for the RCPT, and its
    // rejection, after which no transaction is reported for it.
    const steps = smtpSteps('client.example', 'Out of order');
    steps.splice(
      3,
      0,
      { client: 'RCPT TO:<early@example.com>\r\n' },
      { server: '503 5.5.1 Error: need MAIL command\r\n' },
    );
    const file = buildSmtpCapture('out-of-order.pcap', 25, steps);
    const result = runCli(['read', file]);
    assert.equal(result.status, 0, result.stderr);
    const counts = summaryCounts(result.stderr);
    assert.equal(counts.packets, pcapRecords(readFileSync(file)).length, 'packets');
    assert.equal(counts.flows, 1, 'flows');
    assert.equal(counts.sessions, 1, 'sessions');
    assert.equal(counts.transactions, 1, 'transactions');
    assert.equal(counts.records, result.records.length, 'records');
    const listed = result.records.flatMap((r: Fields) => r.mailtap.anomalies ?? []);
    assert.deepEqual(
      listed.map((a: Fields) => a.name),
      ['smtp_command_out_of_sequence'],
    );
    assert.equal(counts.anomalies, listed.length, 'anomalies');
  });
});

describe('closed stdout', () => {
  function pipeToHead(files: string[]): { nodeStatus: string; stdout: string; stderr: string } {
    // PIPESTATUS gives the exit status of mailtap rather than that of head.
    const quoted = files.map((file) => `"${file}"`).join(' ');
    const command = `"${process.execPath}" "${CLI}" read ${quoted} | head -1; echo "mailtap-status=\${PIPESTATUS[0]}" >&2`;
    const result = spawnSync(command, { shell: '/bin/bash', encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const match = /mailtap-status=(\d+)/.exec(result.stderr);
    return {
      nodeStatus: match?.[1] ?? '',
      stdout: result.stdout,
      stderr: result.stderr.replace(/mailtap-status=\d+\n/, ''),
    };
  }

  test('head -1 on office.pcap', () => {
    const { nodeStatus, stdout, stderr } = pipeToHead([OFFICE]);
    assert.equal(nodeStatus, '0');
    assert.deepEqual(JSON.parse(stdout), officeRecords[0]);
    assert.doesNotMatch(stderr, /EPIPE|Error|internal error|\n\s+at /);
  });

  test('head -1 on output past the pipe buffer', () => {
    // One pass over office.pcap prints about 10 KB, so 200 passes print far more than a 64 KiB
    // pipe buffer holds: mailtap is still writing when head exits, and its next write gets EPIPE.
    const { nodeStatus, stdout, stderr } = pipeToHead(Array<string>(200).fill(OFFICE));
    assert.equal(nodeStatus, '0');
    assert.equal(stdout.split('\n').length, 2, 'one line and its newline');
    assert.doesNotMatch(stderr, /EPIPE|Error|internal error|\n\s+at /);
  });
});

describe('signals', () => {
  test('SIGINT on stdin prints the records read so far', async () => {
    const child = spawn(process.execPath, [CLI, 'read', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // The capture arrives and stdin stays open, as with "tcpdump -w - | mailtap read -".
    child.stdin.write(readFileSync(PRINTER));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.kill('SIGINT');
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(status, 130);
    const transactions = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Fields)
      .filter((record) => record.event.action === 'smtp-transaction');
    assert.equal(transactions.length, 2);
    assert.match(stderr, /2 transactions/);
  });
});

describe('MIME nested past the depth bound', () => {
  // 40 nested multiparts (the parser describes 32 levels) with a program at the bottom: the
  // program is never described, so the structure itself is reported as a risky attachment.
  let body = 'Subject: nested\r\nMIME-Version: 1.0\r\n';
  for (let level = 0; level < 40; level++) {
    body += `Content-Type: multipart/mixed; boundary="b${level}"\r\n\r\n--b${level}\r\n`;
  }
  body += 'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="run.exe"\r\n\r\nMZ\r\n';
  for (let level = 39; level >= 0; level--) body += `--b${level}--\r\n`;
  const steps = smtpSteps('deep.example', 'unused');
  steps[9] = { client: body + '.\r\n' };
  // Detection looks at mail from internal hosts (RFC 1918 by default), so the client is one.
  const builder = new PcapBuilder();
  const client: Endpoint = { mac: '02:00:00:00:00:01', ip: '10.0.0.10', port: 40000 };
  addSmtpConnection(builder, client, { mac: SERVER_MAC, ip: SERVER_IP, port: 25 }, START_MICROS, steps);
  const file = writeTemp('deep-mime.pcap', builder.toBuffer());
  const result = runCli(['read', file]);

  test('reports the anomaly and a risky attachment', () => {
    assert.equal(result.status, 0, result.stderr);
    const transaction = result.records.find((r) => r.event.action === 'smtp-transaction') as Fields;
    assert.ok((transaction.mailtap.message_anomalies as string[]).includes('mime_too_deep'));
    const alert = result.records.find((r) => r.event.kind === 'alert' && r.rule.name === 'risky_attachment') as Fields;
    assert.ok(alert, 'a risky_attachment alert');
    assert.equal(alert.mailtap.alert.evidence.partsUnchecked, true);
  });
});
