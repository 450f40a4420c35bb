// A small cache of expensive open things (slide readers, model sessions) shared by concurrent
// requests. A request takes a lease and releases it when done; an entry evicted or replaced while
// leased is disposed only after its last lease ends, so swapping the active model or closing an old
// slide never breaks a request in flight ("no dropped requests").

interface Entry<T> {
  value: Promise<T>;
  leases: number;
  evicted: boolean;
  lastUsed: number;
}

export interface Lease<T> {
  value: T;
  release(): void;
}

export class LeasedCache<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #capacity: number;
  readonly #dispose: (value: T) => Promise<void>;
  #clock = 0;

  constructor(options: { capacity: number; dispose: (value: T) => Promise<void> }) {
    this.#capacity = Math.max(1, options.capacity);
    this.#dispose = options.dispose;
  }

  /** Opens (once, shared by concurrent callers) or reuses the entry for `key` and leases it. */
  async acquire(key: string, open: () => Promise<T>, options: { keep?: ReadonlySet<string> } = {}): Promise<Lease<T>> {
    let e = this.#entries.get(key);
    if (!e) {
      e = { value: open(), leases: 0, evicted: false, lastUsed: 0 };
      this.#entries.set(key, e);
      const entry = e;
      // A failed open leaves no entry behind: the next caller retries.
      entry.value.catch(() => {
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
      });
      this.#evict(options.keep ?? new Set([key]));
    }
    const entry = e;
    entry.leases++;
    entry.lastUsed = ++this.#clock;
    let value: T;
    try {
      value = await entry.value;
    } catch (err) {
      entry.leases--;
      throw err;
    }
    let released = false;
    return {
      value,
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
        if (entry.evicted && entry.leases === 0) void this.#dispose(value).catch(() => undefined);
      },
    };
  }

  /** Drops `key` (disposed once its leases end). */
  drop(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#entries.delete(key);
    this.#retire(e);
  }

  #retire(e: Entry<T>): void {
    e.evicted = true;
    if (e.leases === 0) void e.value.then((v) => this.#dispose(v)).catch(() => undefined);
  }

  #evict(keep: ReadonlySet<string>): void {
    while (this.#entries.size > this.#capacity) {
      let victim: [string, Entry<T>] | undefined;
      for (const kv of this.#entries) if (!keep.has(kv[0]) && (!victim || kv[1].lastUsed < victim[1].lastUsed)) victim = kv;
      if (!victim) return;
      this.#entries.delete(victim[0]);
      this.#retire(victim[1]);
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(all.map(async (e) => {
      e.evicted = true;
      try {
        await this.#dispose(await e.value);
      } catch {
        // already failed to open: nothing to dispose
      }
    }));
  }
}
