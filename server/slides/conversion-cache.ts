// Size bound of openSlide's conversion cache (`<cacheDir>/<sha256>.zarr`): least recently used
// stores go first once the total exceeds the budget. "Used" is the store directory's atime/mtime,
// which openSlide sets on every open (atime alone is unreliable: relatime/noatime mounts). A store's
// size is measured once and kept in `<store>/.loupe-bytes` (zarr readers ignore it); temporary
// directories of dead conversions are removed too. Budget: option, else $LOUPE_SLIDE_CACHE_BYTES, else 20 GiB.
import { readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const DEFAULT_CONVERSION_CACHE_BYTES = 20 * 2 ** 30;

const STORE = /^[0-9a-f]{64}\.zarr$/;
const TMP = /^\.([0-9a-f]{64}\.zarr)\.tmp-(\d+)-[0-9a-f]+$/;

export function conversionCacheBudget(explicit?: number): number {
  if (explicit !== undefined) return explicit;
  const env = Number(process.env.LOUPE_SLIDE_CACHE_BYTES);
  return Number.isFinite(env) && env >= 0 && process.env.LOUPE_SLIDE_CACHE_BYTES !== '' ? env : DEFAULT_CONVERSION_CACHE_BYTES;
}

/** Total bytes of the files under `dir`. */
export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

/** Marks a cached store as just used (LRU order). */
export async function touchStore(store: string): Promise<void> {
  const now = new Date();
  await utimes(store, now, now).catch(() => {});
}

async function storeBytes(store: string): Promise<number> {
  const side = join(store, '.loupe-bytes');
  try {
    const n = Number(await readFile(side, 'utf8'));
    if (Number.isFinite(n) && n >= 0) return n;
  } catch {
    // measured below
  }
  const before = await stat(store);
  const n = await directoryBytes(store);
  await writeFile(side, String(n)).catch(() => {});
  // Adding the file touched the directory: give it back its last-used time.
  await utimes(store, before.atime, before.mtime).catch(() => {});
  return n;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface EvictionResult {
  /** Store directories removed, least recently used first. */
  removed: string[];
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Removes least recently used stores until the cache holds at most `maxBytes`, never those in
 * `keep` (e.g. the store about to be opened). Also removes `.…tmp-PID-…` directories whose process
 * is gone. A missing cache directory is an empty cache.
 */
export async function evictConversionCache(cacheDir: string, maxBytes: number, keep: readonly string[] = []): Promise<EvictionResult> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return { removed: [], bytesBefore: 0, bytesAfter: 0 };
  }
  for (const n of names) {
    const m = TMP.exec(n);
    if (m && Number(m[2]) !== process.pid && !alive(Number(m[2]))) await rm(join(cacheDir, n), { recursive: true, force: true });
  }
  const stores: Array<{ path: string; bytes: number; used: number }> = [];
  for (const n of names.filter((x) => STORE.test(x))) {
    const path = join(cacheDir, n);
    try {
      const st = await stat(path);
      stores.push({ path, bytes: await storeBytes(path), used: Math.max(st.atimeMs, st.mtimeMs) });
    } catch {
      // removed meanwhile by another process
    }
  }
  const bytesBefore = stores.reduce((a, s) => a + s.bytes, 0);
  let total = bytesBefore;
  const removed: string[] = [];
  const keepSet = new Set(keep);
  stores.sort((a, b) => a.used - b.used);
  for (const s of stores) {
    if (total <= maxBytes) break;
    if (keepSet.has(s.path)) continue;
    await rm(s.path, { recursive: true, force: true });
    total -= s.bytes;
    removed.push(s.path);
  }
  return { removed, bytesBefore, bytesAfter: total };
}
