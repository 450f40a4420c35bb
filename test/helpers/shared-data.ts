// Locates ../shared/data (real slides, GeoJSON, tiles). Tests that need it skip with a clear reason
// when it is absent (a clone outside this workplace); in CI it is always there.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const candidate = fileURLToPath(new URL('../../../shared/data/', import.meta.url));
export const sharedDataDir: string | undefined = process.env.LOUPE_SHARED_DATA ?? (existsSync(candidate) ? candidate : undefined);

export function sharedFile(...parts: string[]): string | undefined {
  if (!sharedDataDir) return undefined;
  const p = join(sharedDataDir, ...parts);
  return existsSync(p) ? p : undefined;
}

export const skipWithoutSharedData: string | false = sharedDataDir ? false : '../shared/data is absent (clone outside the workplace)';
