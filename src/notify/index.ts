export { Notifier, type NotifierOptions, type NotifyCounters } from './notifier.js';
export { alertInfo, type AlertInfo } from './alert-info.js';
export { formatCef, formatSyslog } from './syslog.js';
export { PermanentError, type Target } from './targets.js';
