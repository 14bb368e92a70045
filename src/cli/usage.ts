/** A wrong command line: the CLI prints the message and exits with status 2. */
export class UsageError extends Error {
  readonly code = 'MAILTAP_ERR_USAGE';
}

/** Parses "25,2526" into port numbers; undefined gives an empty list. */
export function parsePortList(text: string | undefined, option: string): number[] {
  if (text === undefined || text.trim() === '') return [];
  return text.split(',').map((item) => {
    const port = Number(item.trim());
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new UsageError(`invalid port "${item.trim()}" in ${option}: expected numbers from 1 to 65535, comma-separated`);
    }
    return port;
  });
}
