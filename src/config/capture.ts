import { z } from 'zod';
import { duration } from './fields.js';
import { parseSize } from './values.js';

/** Bytes of the kernel capture buffer per interface unless capture.buffer_size sets another size. */
export const DEFAULT_CAPTURE_BUFFER = 64 * 1024 * 1024;

const bufferSize = z.union([z.number(), z.string()]).transform((value, ctx): number => {
  const bytes = typeof value === 'number' ? value : parseSize(value);
  // cap passes the size to pcap_set_buffer_size as a signed 32-bit integer.
  if (bytes === undefined || !Number.isInteger(bytes) || bytes < 65536 || bytes > 2 ** 31 - 1) {
    ctx.addIssue({ code: 'custom', message: `expected a size from 64KiB to 2047MiB such as 64MiB, got "${value}"` });
    return z.NEVER;
  }
  return bytes;
});


/** The `capture` section: how `mailtap live` opens its interfaces and reports on them. */
export const captureSchema = z
  .strictObject({
    /** Interfaces to capture on when the command line names none. */
    interfaces: z.array(z.string().min(1)).default([]),
    /** BPF filter; unset builds the default from smtp.ports and smtp.implicit_tls_ports. */
    filter: z.string().min(1).optional(),
    buffer_size: bufferSize.default(DEFAULT_CAPTURE_BUFFER),
    stats_interval: duration.default(60),
    /** Estimated loss (0 to 1) over a stats interval above which the log gets a warning. */
    loss_warning: z.number().min(0).max(1).default(0.01),
  })
  .prefault({});
