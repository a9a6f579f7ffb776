// `prepare` (run by `npm install` and `npm ci`): compiles src/ to dist/ so `npm start` runs plain JavaScript.
// A production install (`npm ci --omit=dev`, as in the Dockerfile's run stage) has no TypeScript: there it keeps the
// dist/ built beforehand, and without one it fails, since `npm start` could not run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'index.js');

let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  if (existsSync(entry)) {
    process.stdout.write('prepare: TypeScript is not installed (production install); using the dist/ built before\n');
    process.exit(0);
  }
  process.stderr.write(
    'prepare: dist/ is missing and TypeScript is not installed, so `npm start` cannot run.\n' +
      'Install with dev dependencies (`npm ci`), or copy a dist/ built by `npm run build` before `npm ci --omit=dev`.\n',
  );
  process.exit(1);
}

const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
process.exit(result.status ?? 1);
