export { EventStore, SWEEP_BATCH, type RangeQuery, type StoreOptions, type SweepLimits } from './store.js';
export { deviceId, eventDeviceIds } from './keys.js';
