// A bounded LRU cache of decoded chunks (zarr chunks, J2K tiles) measured in bytes, not entries, with
// single-flight loading: concurrent readers of the same key share one decode. Readers in slides/ use
// one shared instance by default so that many open slides still stay within one memory budget.

export interface ChunkCache {
  /** Returns the cached value or runs `load` once, however many callers ask at the same time. */
  get(key: string, load: () => Promise<Uint8Array>): Promise<Uint8Array>;
  /** Drops every entry whose key starts with `prefix` (a closed slide's chunks). */
  evictPrefix(prefix: string): void;
  readonly stats: { readonly bytes: number; readonly entries: number; readonly hits: number; readonly misses: number; readonly maxBytes: number };
}

export const DEFAULT_CACHE_BYTES = 256 * 2 ** 20;

export function createChunkCache(maxBytes: number = DEFAULT_CACHE_BYTES): ChunkCache {
  // Map iteration order is insertion order: re-inserting on hit makes the first key the LRU one.
  const entries = new Map<string, Uint8Array>();
  const inflight = new Map<string, Promise<Uint8Array>>();
  let bytes = 0;
  let hits = 0;
  let misses = 0;

  function insert(key: string, value: Uint8Array): void {
    // A value bigger than the whole budget is returned but never kept.
    if (value.byteLength > maxBytes) return;
    const old = entries.get(key);
    if (old) {
      bytes -= old.byteLength;
      entries.delete(key);
    }
    entries.set(key, value);
    bytes += value.byteLength;
    for (const [k, v] of entries) {
      if (bytes <= maxBytes) break;
      entries.delete(k);
      bytes -= v.byteLength;
    }
  }

  return {
    get(key, load) {
      const hit = entries.get(key);
      if (hit) {
        hits++;
        entries.delete(key);
        entries.set(key, hit);
        return Promise.resolve(hit);
      }
      const pending = inflight.get(key);
      if (pending) {
        hits++;
        return pending;
      }
      misses++;
      const p = load().then(
        (value) => {
          inflight.delete(key);
          insert(key, value);
          return value;
        },
        (err: unknown) => {
          // A failed load is not cached: the next reader retries.
          inflight.delete(key);
          throw err;
        },
      );
      inflight.set(key, p);
      return p;
    },
    evictPrefix(prefix) {
      for (const [k, v] of entries) {
        if (k.startsWith(prefix)) {
          entries.delete(k);
          bytes -= v.byteLength;
        }
      }
    },
    get stats() {
      return { bytes, entries: entries.size, hits, misses, maxBytes };
    },
  };
}

let shared: ChunkCache | undefined;
/** The process-wide cache readers use unless given their own budget. */
export function sharedChunkCache(): ChunkCache {
  shared ??= createChunkCache();
  return shared;
}
