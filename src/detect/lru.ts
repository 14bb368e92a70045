interface Entry<V> {
  value: V;
  /** Insertion number when the entry was last moved to the end of the map. */
  seq: number;
}

/**
 * A Map with a maximum size that evicts the least recently used entry first, approximately.
 * A Map iterates in insertion order, so re-inserting an entry moves it to the end and the
 * first entry is the one to evict. To spare the re-insertion on every hit, get() moves an
 * entry only once more than maxSize / 2 insertions happened after its own. An entry is
 * therefore evicted only after at least maxSize / 2 other keys were inserted since its last use.
 */
export class LruMap<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private seq = 0;
  private readonly moveAfter: number;
  /** Entries evicted to stay within maxSize. */
  evicted = 0;

  constructor(
    readonly maxSize: number,
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    this.moveAfter = Math.floor(maxSize / 2);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Returns the value and marks it as recently used. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (this.seq - entry.seq > this.moveAfter) {
      this.entries.delete(key);
      entry.seq = ++this.seq;
      this.entries.set(key, entry);
    }
    return entry.value;
  }

  /** Returns the value without marking it as used. */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Returns the entries from the least to the most recently used one. */
  toArray(): [K, V][] {
    const out: [K, V][] = [];
    for (const [key, entry] of this.entries) out.push([key, entry.value]);
    return out;
  }

  *values(): IterableIterator<V> {
    for (const entry of this.entries.values()) yield entry.value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, seq: ++this.seq });
    while (this.entries.size > this.maxSize) {
      const [oldest, entry] = this.entries.entries().next().value as [K, Entry<V>];
      this.entries.delete(oldest);
      this.evicted++;
      this.onEvict?.(oldest, entry.value);
    }
  }
}
