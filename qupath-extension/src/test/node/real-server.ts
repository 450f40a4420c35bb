// Starts the real `loupe serve` (bin/loupe.mjs, as a user would) for the extension's integration test:
// a temporary data directory, a slides root holding a synthetic slide of pink discs, and a tiny
// untrained U-Net imported and activated over REST — the same fixtures the server's own loop test
// uses (test/api/model-fixture.ts). Prints PORT, SLIDE (file path), DISCS (JSON), then READY; closing
// stdin stops the server and deletes everything.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DISCS, discPolygon, writeDiscSlide, writeTinyUNet } from '../../../../test/api/model-fixture.ts';

const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'loupe-qupath-it-'));
const slide = join(root, 'discs.png');
await writeDiscSlide(slide);
await writeTinyUNet(join(root, 'tiny'), 'tiny');

const child = spawn(process.execPath, [join(repo, 'bin/loupe.mjs'), 'serve', '--port', '0', '--data', join(root, 'data'), '--slides-root', root, '--json'], {
  cwd: repo,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
const url = await new Promise<string>((resolve, reject) => {
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /"url"\s*:\s*"([^"]+)"/.exec(out);
    if (m?.[1]) resolve(m[1]);
  });
  child.on('exit', (code) => reject(new Error(`loupe serve exited with ${code}: ${out}`)));
});

const res = await fetch(`${url}/api/models/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: join(root, 'tiny'), activate: true }) });
if (!res.ok) throw new Error(`model import failed: ${res.status} ${await res.text()}`);

const stop = (): void => {
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  child.on('exit', () => {
    clearTimeout(t);
    rmSync(root, { recursive: true, force: true });
    process.exit(0);
  });
};
console.log(`PORT ${new URL(url).port}`);
console.log(`SLIDE ${slide}`);
console.log(`DISCS ${JSON.stringify(DISCS.map((_, i) => discPolygon(i, 24)))}`);
console.log('READY');
process.stdin.on('end', stop);
process.stdin.resume();
