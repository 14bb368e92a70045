export {
  DEFAULT_SMTP_LIMITS,
  DEFAULT_SMTP_PORTS,
  IMPLICIT_TLS_PORTS,
  MAX_HELD_CLIENT_BYTES,
  MAX_OPEN_TRANSACTIONS,
  SmtpSession,
} from './session.js';
export { SMTP_ANOMALIES, type SmtpAnomalyName } from './anomalies.js';
export { parseQueueId, parseEnhancedCode } from './replies.js';
export type * from './types.js';
