/**
 * Loads native/capture.c, the small N-API module that `npm ci` (or `npm install`) builds with node-gyp. It
 * reads the kernel counters of a capture socket and checks BPF filters without opening one,
 * which the `cap` addon does not offer. Commands work without it, and report what is missing.
 */
import { createRequire } from 'node:module';

export interface CaptureNative {
  /** Returns [packets that passed the filter, packets dropped] since the previous call. */
  readStats(fd: number): [number, number];
  /** Returns null when the filter compiles for the link type (a DLT_ value), else the error. */
  checkFilter(dlt: number, filter: string): string | null;
}

/** Path of the module from src/capture/ and dist/capture/ alike. */
const MODULE_PATH = '../../build/Release/capture_native.node';

let loaded: CaptureNative | undefined;
let loadError: string | undefined;

/** Returns the native module, or undefined when it cannot be loaded (see nativeLoadError). */
export function captureNative(): CaptureNative | undefined {
  if (loaded === undefined && loadError === undefined) {
    try {
      loaded = createRequire(import.meta.url)(MODULE_PATH) as CaptureNative;
    } catch (error) {
      const reason = (error as Error).message.split('\n')[0];
      loadError = `the native module ${MODULE_PATH.slice(6)} cannot be loaded (run npm ci to build it): ${reason}`;
    }
  }
  return loaded;
}

/** Returns the reason captureNative() returned undefined. */
export function nativeLoadError(): string | undefined {
  captureNative();
  return loadError;
}
