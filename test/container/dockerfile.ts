/**
 * Reads the repository's Dockerfile into stages and instructions, for the test that checks it and for the CI step
 * that replays its steps without a container daemon (`image-steps.container.ts`). Only the syntax the Dockerfile
 * uses: line continuations, comments, exec-form (JSON) arrays, `KEY=value` ENV pairs, `--flag=value` options.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface Instruction {
  keyword: string;
  /** The rest of the line, continuations joined. */
  args: string;
}

export interface Stage {
  from: string;
  /** `FROM image AS name`; the last stage has none here. */
  name: string | undefined;
  instructions: Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\w+)\s+(.*)$/.exec(line);
    if (!match) throw new Error(`Dockerfile: cannot read "${line}"`);
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (keyword === 'FROM') {
      const [from, as, name] = args.split(/\s+/);
      stages.push({ from: from!, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile: ${keyword} before FROM`);
    stage.instructions.push({ keyword, args });
  }
  return stages;
}

export function readDockerfile(): Stage[] {
  return parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
}

/** The instructions of one kind in a stage. */
export function instructionsOf(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

/** `["node", "x.js"]` → ['node', 'x.js']; the Dockerfile uses exec form only, so a shell form is an error. */
export function execForm(args: string): string[] {
  if (!args.startsWith('[')) throw new Error(`expected an exec-form (JSON array) command, got: ${args}`);
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) throw new Error(`not a string array: ${args}`);
  return parsed;
}

/** `--interval=30s --retries=3 CMD [...]` → options and the command. */
export function healthcheckOf(stage: Stage): { options: Record<string, string>; command: string[] } {
  const [args] = instructionsOf(stage, 'HEALTHCHECK');
  if (args === undefined) throw new Error('the stage has no HEALTHCHECK');
  const at = args.indexOf('CMD ');
  if (at < 0) throw new Error(`HEALTHCHECK without CMD: ${args}`);
  const options = Object.fromEntries(
    args
      .slice(0, at)
      .trim()
      .split(/\s+/)
      .filter((o) => o !== '')
      .map((o) => {
        const [key, value] = o.replace(/^--/, '').split('=');
        return [key!, value ?? ''];
      }),
  );
  return { options, command: execForm(args.slice(at + 4).trim()) };
}

/** Every `ENV KEY=value …` of a stage, in order (later ones win). */
export function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of instructionsOf(stage, 'ENV')) {
    for (const [, key, quoted, plain] of args.matchAll(/(\w+)=(?:"([^"]*)"|(\S*))/g)) env[key!] = quoted ?? plain ?? '';
  }
  return env;
}

/** `30s`, `1m30s`, `500ms` → milliseconds (Docker's and compose's duration syntax, the units used here). */
export function durationMs(text: string): number {
  let total = 0;
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.map((p) => p[0]).join('') !== text) throw new Error(`not a duration: ${text}`);
  for (const [, amount, unit] of parts) total += Number(amount) * units[unit!]!;
  return total;
}
