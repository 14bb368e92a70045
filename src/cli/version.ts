import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Returns the version from package.json, found next to the dist/ or src/ folder. */
export function packageVersion(): string {
  const file = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}
