export { ClamavClient, clamavAddressText, parseClamavReply } from './clamav.js';
export { RspamdClient, parseRspamdReply, MAX_SYMBOLS } from './rspamd.js';
export { Scanner, DOWN_LOG_INTERVAL_MS, type ScannerCounters, type ScannerOptions } from './scanner.js';
export { scanFields } from './fields.js';
export * from './types.js';
