// `prepare` (run by `npm install` and `npm ci`): compiles src/ to dist/ so `npm start` runs plain JavaScript.
// A production install (`npm ci --omit=dev`, as in the Dockerfile's run stage: no TypeScript or no sources) keeps the
// dist/ built beforehand, and without one it fails, since `npm start` could not run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'index.js');

const buildConfig = join(root, 'tsconfig.build.json');
let tsc;
try {
  // Without the sources' build config (the Dockerfile's run stage copies dist/ only) there is nothing to compile, even
  // where TypeScript is installed: i18next names it as an optional peer, so a production install may carry it.
  if (!existsSync(buildConfig)) throw new Error('no build config');
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  if (existsSync(entry)) {
    process.stdout.write('prepare: production install (no TypeScript or no sources to build); using the dist/ built before\n');
    process.exit(0);
  }
  process.stderr.write(
    'prepare: dist/ is missing and TypeScript is not installed, so `npm start` cannot run.\n' +
      'Install with dev dependencies (`npm ci`), or copy a dist/ built by `npm run build` before `npm ci --omit=dev`.\n',
  );
  process.exit(1);
}

const result = spawnSync(process.execPath, [tsc, '-p', buildConfig], { stdio: 'inherit' });
process.exit(result.status ?? 1);
