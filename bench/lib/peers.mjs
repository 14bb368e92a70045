// The programs the benchmark times, each with its command line and a count of what it found in
// its output, so a fast run that found nothing is visible in the table.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const SMTP_PORTS = [25, 587, 2525];
const PORT_FILTER = SMTP_PORTS.map((port) => `port ${port}`).join(' or ');
/** BPF matches `port N` only on untagged frames; `vlan and ...` covers 802.1Q-tagged ones. */
const SMTP_BPF = `${PORT_FILTER} or (vlan and (${PORT_FILTER}))`;

/** Value at a dotted path, in nested objects ({smtp: {mail_from}}) or flat keys ("smtp.mail_from"). */
function lookup(object, path) {
  if (object && path in object) return object[path];
  let value = object;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = value[key];
  }
  return value;
}

/**
 * Counts transaction records in mailtap's JSON lines ("smtp-transaction" events, or records with
 * smtp.mail_from), their accepted and rejected recipients and queue ids. Falls back to the text
 * summary on stderr ("N transactions") when stdout has no transaction records.
 */
function countMailtapTransactions(stdoutPath, stderrPath) {
  const result = { transactions: 0, recipientsAccepted: 0, recipientsRejected: 0, queueIds: 0, jsonLines: 0 };
  for (const line of readFileSync(stdoutPath, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    let record;
    try {
      record = JSON.parse(line);
    } catch {
      continue;
    }
    result.jsonLines++;
    const action = lookup(record, 'event.action');
    const isTransaction = action === undefined ? lookup(record, 'smtp.mail_from') !== undefined : action === 'smtp-transaction';
    if (!isTransaction) continue;
    result.transactions++;
    const recipients = lookup(record, 'smtp.rcpt_to') ?? [];
    const rejected = lookup(record, 'smtp.rejected_rcpt') ?? [];
    result.recipientsRejected += rejected.length;
    result.recipientsAccepted += recipients.length - rejected.length;
    if (lookup(record, 'smtp.queue_id') !== undefined) result.queueIds++;
  }
  if (result.transactions > 0) {
    const found =
      `${result.transactions} transactions, ${result.recipientsAccepted} accepted and ` +
      `${result.recipientsRejected} rejected recipients, ${result.queueIds} queue ids`;
    return { ...result, found };
  }

  const summary = readFileSync(stderrPath, 'utf8');
  const match = /(\d[\d,]*)\s+transactions?\b/i.exec(summary);
  if (match) {
    const transactions = Number(match[1].replaceAll(',', ''));
    return { transactions, found: `${transactions} transactions (stderr summary)` };
  }
  return { transactions: undefined, found: `no transaction records (${result.jsonLines} JSON lines on stdout)` };
}

/** Counts MAIL and RCPT commands and IMF messages in tshark's tab-separated field output. */
function countTsharkFields(stdoutPath) {
  let mail = 0;
  let rcpt = 0;
  let messages = 0;
  for (const line of readFileSync(stdoutPath, 'utf8').split('\n')) {
    if (!line) continue;
    const [commands, , messageId] = line.split('\t');
    // One frame can carry several pipelined commands; tshark joins their values with commas.
    for (const command of commands.split(',')) {
      if (command === 'MAIL') mail++;
      else if (command === 'RCPT') rcpt++;
    }
    if (messageId) messages++;
  }
  return { transactions: mail, found: `${mail} MAIL, ${rcpt} RCPT, ${messages} messages` };
}

/**
 * Returns the peer definitions for one capture file; commands run with repoRoot as the working
 * directory. Each peer has `available` (true, or the reason it cannot run), the command, and
 * `count(files)` that reads its output after the run.
 */
export function definePeers({ capturePath, outDir, repoRoot }) {
  const tcpflowDir = join(outDir, 'tcpflow');
  const mailtapMain = join(repoRoot, 'dist', 'cli', 'main.js');
  return [
    {
      name: 'mailtap',
      available: existsSync(mailtapMain) ? true : `${mailtapMain} not found: the CLI is not built yet`,
      command: process.execPath,
      // 2525 is not a standard SMTP port; tshark gets the same port through -d below.
      args: [mailtapMain, 'read', '--ports', '2525', capturePath],
      display: `node dist/cli/main.js read --ports 2525 ${capturePath}`,
      count: ({ stdoutPath, stderrPath }) => countMailtapTransactions(stdoutPath, stderrPath),
    },
    {
      // The same run with every record written to a LevelDB store first: its time divided by
      // mailtap's is the cost of storing.
      name: 'mailtap-db',
      available: existsSync(mailtapMain) ? true : `${mailtapMain} not found: the CLI is not built yet`,
      command: process.execPath,
      args: [mailtapMain, 'read', '--ports', '2525', '--db', relative(repoRoot, join(outDir, 'mailtap-db')), capturePath],
      display: `node dist/cli/main.js read --ports 2525 --db ${relative(repoRoot, join(outDir, 'mailtap-db'))} ${capturePath}`,
      before: () => rmSync(join(outDir, 'mailtap-db'), { recursive: true, force: true }),
      count: ({ stdoutPath, stderrPath }) => countMailtapTransactions(stdoutPath, stderrPath),
    },
    {
      name: 'tshark',
      available: true,
      command: 'tshark',
      args: [
        '-n',
        '-r', capturePath,
        '-o', 'tcp.desegment_tcp_streams:TRUE',
        '-o', 'tcp.reassemble_out_of_order:TRUE',
        '-d', 'tcp.port==2525,smtp',
        '-Y', 'smtp.req.command == "MAIL" || smtp.req.command == "RCPT" || imf',
        '-T', 'fields',
        '-e', 'smtp.req.command',
        '-e', 'smtp.req.parameter',
        '-e', 'imf.message_id',
        '-e', 'imf.from',
        '-e', 'imf.subject',
      ],
      count: ({ stdoutPath }) => countTsharkFields(stdoutPath),
    },
    {
      name: 'tcpflow',
      available: true,
      command: 'tcpflow',
      args: ['-r', capturePath, '-o', relative(repoRoot, tcpflowDir), SMTP_BPF],
      before: () => rmSync(tcpflowDir, { recursive: true, force: true }),
      count: () => {
        const streams = existsSync(tcpflowDir) ? readdirSync(tcpflowDir).filter((f) => f !== 'report.xml' && f !== 'alerts.txt').length : 0;
        rmSync(tcpflowDir, { recursive: true, force: true });
        return { transactions: undefined, found: `${streams} stream files (one per direction)` };
      },
    },
    {
      name: 'mailsnarf',
      available: true,
      command: 'mailsnarf',
      args: ['-p', capturePath],
      count: ({ stdoutPath }) => {
        // mailsnarf writes mbox: each message starts with a "From <sender> <date>" line.
        const messages = readFileSync(stdoutPath, 'utf8').split('\n').filter((line) => /^From \S+ /.test(line)).length;
        return { transactions: undefined, found: `${messages} messages` };
      },
    },
  ];
}
