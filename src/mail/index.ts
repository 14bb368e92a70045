export { DEFAULT_MAIL_LIMITS, MessageParser } from './message.js';
export { parseAddressList } from './addresses.js';
export { decodeEncodedWords } from './encoded-words.js';
export { decodeHeaderValue, decodeRawHeaderText, readMessageHeaders } from './headers.js';
export { MAX_FILENAME_LENGTH } from './part-headers.js';
export type { MailAddress, MailLimits, MessageInfo, MimePart } from './types.js';
