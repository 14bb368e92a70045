export {
  EventStore,
  SWEEP_BATCH,
  prepareEvent,
  type AppendResult,
  type PreparedEvent,
  type ExtraPuts,
  type RangeQuery,
  type StoreOptions,
  type SweepLimits,
} from './store.js';
export { deviceId, deviceKey, eventDeviceIds, stateKey } from './keys.js';
