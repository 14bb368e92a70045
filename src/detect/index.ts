export { Detector, type DetectorState, type DetectorStats } from './detector.js';
export { RULES, type RuleInfo } from './rules.js';
export { MAX_EVENT_IDS, type AlertChange, type AlertSink } from './alerts.js';
export { classifyAttachment, type AttachmentRisk } from './attachments.js';
export { BASELINE_DAYS, MAX_WINDOW_DOMAINS } from './baseline.js';
export type * from './types.js';
