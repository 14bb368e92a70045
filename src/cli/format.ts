import type { EcsEvent } from '../events/ecs.js';
import { sanitizeForTerminal } from '../events/sanitize.js';

interface Column {
  title: string;
  width: number;
  value(event: EcsEvent): string;
}

type Fields = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function endpoint(side: Fields | undefined): string {
  if (!side) return '';
  return side.ip?.includes(':') ? `[${side.ip}]:${side.port}` : `${side.ip}:${side.port}`;
}

function recipients(smtp: Fields): string {
  const all: string[] = smtp.rcpt_to ?? [];
  const rejected: unknown[] = smtp.rejected_rcpt ?? [];
  if (all.length === 0) return '';
  const first = all[0];
  const more = all.length > 1 ? ` +${all.length - 1}` : '';
  const refused = rejected.length > 0 ? ` (${rejected.length} rejected)` : '';
  return first + more + refused;
}

function attachmentNames(email: Fields | undefined): string {
  const list: Fields[] = email?.attachments ?? [];
  return list.map((a) => a.file?.name ?? a.file?.mime_type ?? '?').join(', ');
}

const COLUMNS: Column[] = [
  { title: 'TIME', width: 19, value: (e) => e['@timestamp'].slice(0, 19).replace('T', ' ') },
  { title: 'CLIENT', width: 21, value: (e) => endpoint(e.source as Fields) },
  { title: 'SERVER', width: 21, value: (e) => endpoint(e.destination as Fields) },
  { title: 'HELO', width: 16, value: (e) => (e.smtp as Fields)?.helo ?? '' },
  {
    title: 'MAIL FROM',
    width: 24,
    value: (e) => {
      const smtp = e.smtp as Fields;
      if (e.event.action === 'smtp-session') return smtp.tls ? `(${smtp.tls_mode ?? 'tls'})` : '(no mail)';
      return smtp.mail_from === '' ? '<>' : (smtp.mail_from ?? '');
    },
  },
  { title: 'RCPT TO', width: 28, value: (e) => recipients(e.smtp as Fields) },
  { title: 'SUBJECT', width: 24, value: (e) => (e.email as Fields)?.subject ?? '' },
  { title: 'ATTACHMENTS', width: 20, value: (e) => attachmentNames(e.email as Fields) },
  { title: 'REPLY', width: 0, value: (e) => (e.smtp as Fields)?.last_reply ?? '' },
];

function cell(text: string, width: number): string {
  const safe = sanitizeForTerminal(text, width === 0 ? 60 : width);
  return width === 0 ? safe : safe.padEnd(width);
}

/** Returns the header line of the table format. */
export function tableHeader(): string {
  return COLUMNS.map((c) => cell(c.title, c.width)).join(' ');
}

/** Formats one event as a table row: fixed widths, so rows print as they come. */
export function tableRow(event: EcsEvent): string {
  if (event.event.kind === 'alert') return alertRow(event);
  return COLUMNS.map((c) => cell(String(c.value(event)), c.width)).join(' ');
}

/**
 * Formats an alert across the columns: time, "ALERT" and severity where the client and server
 * go, then rule, count, message and owner.
 */
function alertRow(event: EcsEvent): string {
  const alert = (event.mailtap as Fields | undefined)?.alert ?? {};
  const rule = (event.rule as Fields | undefined)?.name ?? '';
  const owner: Fields | undefined = alert.owner;
  const ownerText = owner ? ` -> ${owner.name}${owner.email ? ` <${owner.email}>` : ''}` : '';
  const change = event.event.action === 'alert-updated' ? ' (update)' : '';
  return [
    cell(event['@timestamp'].slice(0, 19).replace('T', ' '), 19),
    cell(`ALERT ${String(alert.severity ?? '').toUpperCase()}${change}`, 21),
    cell(`${rule} x${alert.count ?? 1}`, 21),
    sanitizeForTerminal(`${String(event.message ?? '')}${ownerText}`, 160),
  ].join(' ');
}

/** Formats a byte count with binary units: 1.5 MiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Formats a count with thousands separators. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
