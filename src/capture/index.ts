export { createCaptureStats, readCapture, readCaptureStream, DEFAULT_CHUNK_SIZE } from './reader.js';
export type { ReadCaptureOptions } from './reader.js';
export { MAX_RECORD_LENGTH, PCAP_DEFAULT_MAX_CAPTURED_LENGTH } from './pcap.js';
export { CaptureError } from './types.js';
export type { CaptureErrorCode, CaptureStats, Packet, ProgressCallback } from './types.js';
