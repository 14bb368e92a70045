export { DEFAULT_FLOW_LIMITS, FlowTable } from './flow-table.js';
export { makeFlowId } from './flow-id.js';
export { seqAdd, seqOffset } from './seq.js';
export type {
  Anomaly,
  CloseReason,
  Direction,
  Endpoint,
  Flow,
  FlowLimits,
  FlowStats,
  FlowTableOptions,
  StreamHandler,
} from './types.js';
