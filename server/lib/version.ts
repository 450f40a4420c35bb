// The software version, read once from package.json; written into every output we produce.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
export const LOUPE_VERSION: string = pkg.version;
