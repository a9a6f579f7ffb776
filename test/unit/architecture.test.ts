import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout is a promise to a newcomer: each folder owns one capability and imports only from the layers below it,
 * and no file imports itself back through others. This reads every import of `src/` and checks both.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');

/**
 * Top to bottom: a file may import from its own layer's folder or from any layer below, never from above. Order of
 * the services: what decides (usage) uses what runs (generation), which uses results, Discord delivery and Segmind;
 * everything stores through storage.
 */
const LAYERS: ReadonlyArray<{ name: string; paths: readonly string[] }> = [
  { name: 'composition root and process', paths: ['index.ts', 'app.ts', 'scripts/', 'http/'] },
  { name: 'commands', paths: ['commands/'] },
  { name: 'usage', paths: ['services/usage/'] },
  { name: 'creative', paths: ['services/creative/'] },
  { name: 'generation', paths: ['services/generation/'] },
  { name: 'results', paths: ['services/results/'] },
  { name: 'safety', paths: ['services/safety/'] },
  { name: 'discord', paths: ['services/discord/'] },
  { name: 'segmind', paths: ['services/segmind/'] },
  { name: 'storage', paths: ['services/storage/'] },
  { name: 'foundation', paths: ['services/metrics.ts', 'config.ts', 'logger.ts', 'clock.ts', 'errors.ts', 'plural.ts', 'i18n/'] },
];

const IMPORT = /(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

/** file (relative to src) → the files it imports (relative to src). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(join(SRC, file), 'utf8');
    const targets = [...text.matchAll(IMPORT)].map((m) => relative(SRC, resolve(SRC, dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

function layerOf(file: string): number {
  const at = LAYERS.findIndex((layer) => layer.paths.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p)));
  if (at < 0) throw new Error(`${file} belongs to no layer: add its folder to LAYERS`);
  return at;
}

/** Every cycle found by a depth-first search, each as the files on it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe('the source layout', () => {
  const graph = importGraph();

  it('resolves every relative import to a file in src', () => {
    const missing = [...graph].flatMap(([file, targets]) => targets.filter((t) => !graph.has(t)).map((t) => `${file} → ${t}`));
    expect(missing).toEqual([]);
  });

  it('has no import cycles', () => {
    expect(cycles(graph).map((cycle) => cycle.join(' → '))).toEqual([]);
  });

  it('imports only from the same layer or the layers below', () => {
    const upward = [...graph].flatMap(([file, targets]) =>
      targets
        .filter((target) => layerOf(target) < layerOf(file))
        .map((target) => `${file} (${LAYERS[layerOf(file)]!.name}) → ${target} (${LAYERS[layerOf(target)]!.name})`),
    );
    expect(upward).toEqual([]);
  });

  it('finds a cycle and an upward import when there is one (the check itself works)', () => {
    expect(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', ['a.ts']]]))).toEqual([['a.ts', 'b.ts', 'a.ts']]);
    expect(layerOf('services/storage/storage.ts')).toBeGreaterThan(layerOf('services/usage/usage-policy.ts'));
  });
});
