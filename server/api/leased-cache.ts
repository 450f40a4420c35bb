// A small cache of expensive open things (slide readers, model sessions) shared by concurrent
// requests. A request takes a lease and releases it when done; an entry evicted or replaced while
// leased is disposed only after its last lease ends, so swapping the active model or closing an old
// slide never breaks a request in flight ("no dropped requests"). Every opened value is disposed
// exactly once — when evicted and unleased, or at closeAll — so what it holds (a model's worker
// thread, a slide's file handles) does not outlive its place in the cache.

interface Entry<T> {
  value: Promise<T>;
  leases: number;
  evicted: boolean;
  disposed: boolean;
  lastUsed: number;
}

export interface Lease<T> {
  value: T;
  release(): void;
}

export class LeasedCache<T> {
  readonly #entries = new Map<string, Entry<T>>();
  /** Evicted entries still leased: disposed when their last lease ends (or at closeAll). */
  readonly #retired = new Set<Entry<T>>();
  /** Disposals started and not yet finished. */
  readonly #disposing = new Set<Promise<void>>();
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
      e = { value: open(), leases: 0, evicted: false, disposed: false, lastUsed: 0 };
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
      if (entry.leases === 0) this.#retired.delete(entry);
      throw err;
    }
    let released = false;
    return {
      value,
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
        if (entry.evicted && entry.leases === 0) this.#disposeEntry(entry);
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

  /** Entries open in the cache (not counting evicted ones still leased). */
  get size(): number {
    return this.#entries.size;
  }

  /** Resolves when every disposal started so far has finished (failures are ignored). */
  async settled(): Promise<void> {
    while (this.#disposing.size > 0) await Promise.all([...this.#disposing]);
  }

  #retire(e: Entry<T>): void {
    e.evicted = true;
    if (e.leases === 0) this.#disposeEntry(e);
    else this.#retired.add(e);
  }

  /** Disposes an entry's value once (nothing for an open that failed). */
  #disposeEntry(e: Entry<T>): Promise<void> {
    this.#retired.delete(e);
    if (e.disposed) return Promise.resolve();
    e.disposed = true;
    const p = e.value.then((v) => this.#dispose(v)).catch(() => undefined);
    this.#disposing.add(p);
    void p.then(() => this.#disposing.delete(p));
    return p;
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

  /** Shutdown: disposes everything, leased or not, and waits for every disposal. */
  async closeAll(): Promise<void> {
    const all = [...this.#entries.values(), ...this.#retired];
    this.#entries.clear();
    this.#retired.clear();
    for (const e of all) {
      e.evicted = true;
      this.#disposeEntry(e);
    }
    await this.settled();
  }
}
