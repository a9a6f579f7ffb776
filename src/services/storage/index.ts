export { KeyedMutex } from './keyed-mutex.js';
export { openStorage, StorageConfigError, type OpenStorageOptions } from './open-storage.js';
export type { Storage, StoreKind } from './storage.js';
