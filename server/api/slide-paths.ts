// Turns a path a client sent into a real file path, only if it lies inside one of the configured
// slide roots. Nothing a client sends is used as a path without this check: `..` segments are refused
// outright, and the real path (symlinks resolved) must stay inside a root's real path, so a symlink
// pointing out of a root is refused too.
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import { AppError } from '../contracts/errors.ts';

export function resolveInsideRoots(input: unknown, roots: readonly string[]): string {
  if (typeof input !== 'string' || input.length === 0 || input.length > 4096) {
    throw new AppError('E_BAD_PATH', 'path must be a non-empty string (a file inside one of the --slides-root directories)');
  }
  if (input.includes('\0')) throw new AppError('E_BAD_PATH', 'path must not contain NUL characters');
  if (input.split(/[\\/]+/).includes('..')) {
    throw new AppError('E_PATH_OUTSIDE_ROOTS', `path "${input}" contains "..": give a path inside a slide root`);
  }
  if (roots.length === 0) {
    throw new AppError('E_PATH_OUTSIDE_ROOTS', 'no slide roots are configured: start the server with --slides-root DIR to register slides');
  }
  const realRoots = roots.flatMap((r) => {
    try {
      return [realpathSync(r)];
    } catch {
      return [];
    }
  });
  const under = (p: string, root: string): boolean => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
  // An absolute path outside every root is refused before touching the file system (no probing of
  // which files exist elsewhere).
  if (isAbsolute(input) && !roots.some((r) => under(resolve(input), r)) && !realRoots.some((r) => under(resolve(input), r))) {
    throw new AppError('E_PATH_OUTSIDE_ROOTS', `"${input}" is outside the slide roots (${roots.join(', ')})`);
  }
  const candidates = isAbsolute(input) ? [input] : roots.map((r) => resolve(r, input));
  let sawExisting = false;
  for (const c of candidates) {
    let real: string;
    try {
      real = realpathSync(c);
    } catch {
      continue;
    }
    sawExisting = true;
    if (realRoots.some((root) => under(real, root))) {
      if (!statSync(real).isFile() && !statSync(real).isDirectory()) throw new AppError('E_BAD_PATH', `"${input}" is not a file or directory`);
      return real;
    }
  }
  if (sawExisting) throw new AppError('E_PATH_OUTSIDE_ROOTS', `"${input}" is outside the slide roots (${roots.join(', ')}); symlinks out of a root are refused`);
  throw new AppError('E_PATH_NOT_FOUND', `no file "${input}" inside the slide roots (${roots.join(', ')})`);
}
