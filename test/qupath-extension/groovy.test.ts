// Builds and tests the QuPath extension (qupath-extension/run-tests.sh: Groovy 4.0.26 on JDK 17,
// JUnit 4), then runs the server's own QuPath import-rule checker on every GeoJSON the Groovy core
// produced during those tests — one rule list for both sides. Skipped, with the reason, when JDK 17 or
// the Debian jars (junit4, libgoogle-gson-java, libopenjfx-java) are missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.ts';
import { checkQuPathImportRules } from '../../server/objects/import-rules.ts';

const java17 = process.env.LOUPE_JAVA17_HOME ?? '/usr/lib/jvm/java-17-openjdk-amd64';
const needs = [
  [join(java17, 'bin/javac'), 'JDK 17 (openjdk-17-jdk-headless)'],
  ['/usr/share/java/gson.jar', 'Debian package libgoogle-gson-java'],
  ['/usr/share/java/junit4.jar', 'Debian package junit4'],
  ['/usr/share/java/javafx-controls.jar', 'Debian package libopenjfx-java'],
] as const;
const missing = needs.filter(([p]) => !existsSync(p)).map(([, what]) => what);
const skip = missing.length > 0 ? `needs ${missing.join(', ')}` : false;

test('the QuPath extension compiles (core, glue against the QuPath stand-ins) and its JUnit tests pass', { skip, timeout: 600_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'loupe-qupath-'));
  try {
    const geojsonDir = join(out, 'geojson');
    const r = spawnSync('bash', [join(repoRoot, 'qupath-extension/run-tests.sh')], {
      cwd: repoRoot,
      env: { ...process.env, LOUPE_QUPATH_BUILD: join(out, 'build'), LOUPE_GEOJSON_OUT: geojsonDir },
      encoding: 'utf8',
      maxBuffer: 64 * 2 ** 20,
    });
    const output = `${r.stdout}\n${r.stderr}`;
    const summary = /(\d+) passed, (\d+) failed/.exec(r.stdout);
    assert.ok(summary, `no "N passed, N failed" line:\n${output.slice(-4000)}`);
    assert.equal(Number(summary[2]), 0, output.slice(-6000));
    assert.equal(r.status, 0, output.slice(-4000));
    assert.ok(Number(summary[1]) >= 20, `only ${summary[1]} Groovy tests ran`);

    // Everything the Groovy core would hand QuPath passes the same rules the server's writer obeys.
    const files = readdirSync(geojsonDir).filter((f) => f.endsWith('.geojson'));
    assert.ok(files.length >= 3, `the Groovy tests wrote ${files.length} GeoJSON files`);
    for (const f of files) {
      const fc: unknown = JSON.parse(readFileSync(join(geojsonDir, f), 'utf8'));
      assert.deepEqual(checkQuPathImportRules(fc), [], `${f} breaks a QuPath import rule`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
