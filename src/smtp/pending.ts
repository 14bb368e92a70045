import type { TxState } from './transaction.js';

export type PendingKind =
  | 'banner'
  | 'helo'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'data_end'
  | 'bdat'
  | 'bdat_invalid'
  | 'rset'
  | 'auth'
  | 'starttls'
  | 'other';

/**
 * Commands waiting for replies, in the order they were sent. One entry may represent several
 * commands in a row whose replies are handled the same way; it then consumes count replies.
 */
export interface Pending {
  kind: PendingKind;
  tx: TxState | undefined;
  /** Index in tx.record.recipients for RCPT, -1 when the recipient was not kept. */
  rcptIndex: number;
  /** BDAT ... LAST. */
  last: boolean;
  heloCommand: 'HELO' | 'EHLO' | 'LHLO';
  /** Number of commands the entry represents, each waiting for one reply. */
  count: number;
}

/** Kinds whose reply only becomes the last reply of the transaction. */
const PLAIN_KINDS: ReadonlySet<PendingKind> = new Set(['other', 'rset', 'bdat_invalid']);

/** Kinds whose reply changes the record of the transaction they belong to. */
const TRANSACTION_KINDS: ReadonlySet<PendingKind> = new Set([
  'mail',
  'rcpt',
  'data',
  'data_end',
  'bdat',
  'bdat_invalid',
  'rset',
  'other',
]);

/** True when the reply to the entry changes nothing but the last reply of its transaction. */
export function isPlain(entry: Pending): boolean {
  return PLAIN_KINDS.has(entry.kind) || (entry.kind === 'rcpt' && entry.rcptIndex === -1);
}

/**
 * True when one reply to a command of entry b has the same effect as one reply to a command
 * of entry a, so that a single entry with a count can represent both. This holds for plain
 * entries, BDAT chunks other than the last, and HELO commands of one kind, each within one
 * transaction. DATA, AUTH and STARTTLS are never merged, because the reply to each of them
 * decides how the client bytes after it are read.
 */
export function canMerge(a: Pending, b: Pending): boolean {
  if (a.tx !== b.tx) return false;
  if (isPlain(a) && isPlain(b)) return true;
  if (a.kind !== b.kind) return false;
  if (a.kind === 'bdat') return !a.last && !b.last;
  return a.kind === 'helo' && a.heloCommand === b.heloCommand;
}

/**
 * FIFO queue of waiting commands. Entries are kept in an array with a head index, and the
 * array is sliced once more than half of it has been consumed.
 */
export class PendingQueue {
  private entries: Pending[] = [];
  private head = 0;

  /** Entries in the queue; the memory it uses grows with this number. */
  get size(): number {
    return this.entries.length - this.head;
  }

  /** The entry at position index from the head, or undefined. */
  at(index: number): Pending | undefined {
    return this.entries[this.head + index];
  }

  /** Append an entry, or add its command to the last entry when canMerge allows it. */
  append(entry: Pending): Pending {
    const tail = this.entries[this.entries.length - 1];
    if (tail !== undefined && this.size > 0 && canMerge(tail, entry)) {
      tail.count += entry.count;
      return tail;
    }
    this.entries.push(entry);
    return entry;
  }

  /**
   * Take one command from the head entry for a reply. Returns the head entry, which leaves
   * the queue once all its commands have had their replies.
   */
  takeOne(): Pending | undefined {
    const entry = this.entries[this.head];
    if (entry === undefined) return undefined;
    entry.count--;
    if (entry.count <= 0) this.removeHead();
    return entry;
  }

  /** Remove the head entry with all the commands it represents. */
  removeHead(): Pending | undefined {
    if (this.head >= this.entries.length) return undefined;
    const entry = this.entries[this.head++] as Pending;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return entry;
  }

  /**
   * Shrink the queue at the price of detail, keeping the number of replies every entry
   * consumes. Entries of emitted transactions lose their transaction, because their replies
   * no longer change any record. RCPT entries lose their recipient, whose reply is then not
   * recorded. Adjacent entries that canMerge are then merged. The keep entry (the one whose
   * reply the session awaits) is left as it is.
   */
  compact(keep: Pending | undefined): void {
    const compacted: Pending[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i] as Pending;
      if (entry !== keep) {
        if (entry.tx?.emitted === true) {
          entry.tx = undefined;
          if (TRANSACTION_KINDS.has(entry.kind)) entry.kind = 'other';
        }
        entry.rcptIndex = -1;
      }
      const tail = compacted[compacted.length - 1];
      if (tail !== undefined && tail !== keep && entry !== keep && canMerge(tail, entry)) {
        tail.count += entry.count;
      } else {
        compacted.push(entry);
      }
    }
    this.entries = compacted;
    this.head = 0;
  }
}
