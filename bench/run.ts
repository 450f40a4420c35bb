// `npm run bench -- NAME…`: runs bench/NAME.bench.ts (all of them when no name is given) and writes
// each result as JSON to bench/results/NAME.json with the machine it ran on. Benchmarks report
// ratios measured in one run; they are never part of `npm test`.
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, platform, arch } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { LOUPE_VERSION } from '../server/lib/version.ts';

export interface BenchModule {
  /** Runs the benchmark and returns its measurements (ratios first, raw timings after). */
  run(args: string[]): Promise<Record<string, unknown>>;
}

const dir = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).map((f) => f.replace(/\.bench\.ts$/, '')).sort();
const [first, ...rest] = process.argv.slice(2);
const names = first ? [first] : available;
for (const name of names) {
  if (!available.includes(name)) {
    console.error(`loupe bench: E_ARG_INVALID: unknown benchmark "${name}" (have: ${available.join(', ')})`);
    process.exit(2);
  }
}
mkdirSync(join(dir, 'results'), { recursive: true });
for (const name of names) {
  const mod = (await import(pathToFileURL(join(dir, `${name}.bench.ts`)).href)) as BenchModule;
  console.error(`bench ${name} …`);
  const started = new Date();
  const results = await mod.run(first ? rest : []);
  const doc = {
    benchmark: name,
    date: started.toISOString(),
    loupe: LOUPE_VERSION,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), platform: platform(), arch: arch(), node: process.version },
    results,
  };
  writeFileSync(join(dir, 'results', `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
  console.log(JSON.stringify(doc, null, 2));
}
