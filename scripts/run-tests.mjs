#!/usr/bin/env node
// `npm test`: every test/**/*.test.ts through node's own test runner (its summary is what CI reads).
// Arguments narrow the run: `npm test -- test/slides` or `npm test -- geometry`.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const files = walk(join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((q) => f.includes(q.replace(/^\.\//, ''))))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const tsx = import.meta.resolve('tsx');
const args = ['--import', tsx, '--test', '--test-reporter=spec', '--test-reporter-destination=stdout', ...files];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, LOUPE_TEST: '1' } });
process.exit(r.status ?? 1);
