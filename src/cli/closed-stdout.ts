/**
 * Handling of a closed stdout, when the reader goes away (`mailtap read x.pcap | head`). By default
 * the process exits at once with status 0, as other Unix tools do. A command that must finish
 * its work first, such as `read --db` storing every record it read, registers a handler.
 */
let handler: (() => void) | undefined;

/** Makes fn run instead of the exit when stdout closes; the returned function removes it. */
export function onStdoutClosed(fn: () => void): () => void {
  handler = fn;
  return () => {
    if (handler === fn) handler = undefined;
  };
}

/** Called on EPIPE on stdout: runs the handler and returns true, or returns false when none is set. */
export function stdoutClosed(): boolean {
  if (handler === undefined) return false;
  handler();
  return true;
}
