/**
 * A Map with a maximum size that forgets the least recently used entry first. A Map iterates
 * in insertion order, so re-inserting an entry on use keeps the oldest one first.
 */
export class LruMap<K, V> {
  private readonly entries = new Map<K, V>();
  /** Entries forgotten to stay within maxSize. */
  evicted = 0;

  constructor(
    readonly maxSize: number,
    private readonly onEvict?: (key: K, value: V) => void,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Returns the value and marks it as the most recently used. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  /** Returns the value without changing the order. */
  peek(key: K): V | undefined {
    return this.entries.get(key);
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.maxSize) {
      const oldest = this.entries.keys().next().value as K;
      const oldValue = this.entries.get(oldest) as V;
      this.entries.delete(oldest);
      this.evicted++;
      this.onEvict?.(oldest, oldValue);
    }
  }

  values(): IterableIterator<V> {
    return this.entries.values();
  }
}
