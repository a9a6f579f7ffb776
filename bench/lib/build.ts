/**
 * The benchmark's processes run compiled (`node file.js`), as `npm start` runs the bot: a TypeScript loader would add
 * its own thread and modules to the memory being measured. `buildForBench` compiles src/ and bench/ once at the start
 * of `npm run bench` (bench/tsconfig.build.json, incremental: about a second when nothing changed).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const BUILD_DIR = '.cache/bench-build';

export function buildForBench(root: string): void {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const started = performance.now();
  const result = spawnSync(process.execPath, [tsc, '-b', join(root, 'bench/tsconfig.build.json')], { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`compiling for the benchmark failed (tsc -b bench/tsconfig.build.json):\n${result.stdout}${result.stderr}`);
  console.log(`compiled src/ and bench/ into ${BUILD_DIR}/ in ${Math.round(performance.now() - started)} ms`);
}

/** The compiled twin of a repository-relative `.ts` path, e.g. `bench/bot-process.ts` → `<root>/.cache/bench-build/bench/bot-process.js`. */
export function builtScript(root: string, script: string): string {
  if (!script.endsWith('.ts')) throw new Error(`expected a .ts path, got ${script}`);
  const path = join(root, BUILD_DIR, `${script.slice(0, -'.ts'.length)}.js`);
  if (!existsSync(path)) throw new Error(`${path} is missing: the benchmark compiles it at its start (buildForBench)`);
  return path;
}
