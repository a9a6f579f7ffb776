/**
 * Banned-word matching that survives the usual disguises: case, accents, look-alike letters from other scripts,
 * leetspeak, repeated letters, separators inside a word (`n.s.f.w`) and spaced-out letters (`n s f w`).
 * Matching is by whole words, so "class" never matches a rule "ass"; a trailing `*` makes a rule a prefix
 * (`porn*` matches "pornographic").
 */

/** Letters that look alike are folded to one representative; rules and prompts are folded the same way. */
const FOLD: Record<string, string> = {
  // Cyrillic
  а: 'a', в: 'b', е: 'e', ё: 'e', к: 'k', м: 'm', н: 'h', о: 'o', р: 'p', с: 'c', т: 't', у: 'y', х: 'x',
  і: 'i', ї: 'i', ј: 'j', ѕ: 's', ԁ: 'd', ɡ: 'g',
  // Greek
  α: 'a', β: 'b', ε: 'e', η: 'n', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x', ω: 'w',
  // leetspeak and symbols
  '0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '8': 'b', '@': 'a', $: 's', '!': 'i', '|': 'i',
  // l and i are confused both ways (1ingerie, Iingerie): fold both to i
  l: 'i',
};

const ZERO_WIDTH_AND_MARKS = /[\p{M}\p{Cf}]/gu;

function foldCharacters(text: string): string {
  let out = '';
  for (const char of text.normalize('NFKD').replace(ZERO_WIDTH_AND_MARKS, '').toLowerCase()) {
    out += FOLD[char] ?? char;
  }
  return out;
}

/**
 * Splits into comparable words: separators inside a word vanish, runs of single letters join up. Repeated letters are
 * kept: they are judged when matching, where a prompt may repeat a rule's letters but never drop one.
 */
export function normalizeWords(text: string): string[] {
  const words = foldCharacters(text)
    .split(/\s+/u)
    .map((word) => word.replace(/[^\p{L}\p{N}*]/gu, ''))
    .filter((word) => word !== '');
  const merged: string[] = [];
  let run = '';
  for (const word of words) {
    if ([...word].length === 1 && word !== '*') {
      run += word;
      continue;
    }
    if (run) merged.push(run);
    run = '';
    merged.push(word);
  }
  if (run) merged.push(run);
  return merged;
}

export interface WordRule {
  /** The rule as the moderator wrote it, to show which rule a prompt broke. */
  source: string;
  words: string[];
  prefix: boolean;
}

/** A word as letters and how often each repeats in a row: `boob` is b×1 o×2 b×1. */
type Runs = Array<{ char: string; count: number }>;

function runsOf(word: string): Runs {
  const runs: Runs = [];
  for (const char of word) {
    const last = runs.at(-1);
    if (last?.char === char) last.count++;
    else runs.push({ char, count: 1 });
  }
  return runs;
}

/**
 * Whether a prompt word is the rule word with some letters repeated (`aaass` for `ass`), or starts like it for a prefix
 * rule. A prompt word with FEWER repeats is another word: `as` is not `ass`, `bob` is not `boob`. Collapsing repeats on
 * both sides made exactly those ordinary words match.
 */
function sameWord(word: Runs, rule: Runs, prefix: boolean): boolean {
  if (word.length < rule.length || (!prefix && word.length !== rule.length)) return false;
  for (let i = 0; i < rule.length; i++) {
    const w = word[i]!;
    const r = rule[i]!;
    if (w.char !== r.char || w.count < r.count) return false;
  }
  return true;
}

export function compileRule(source: string): WordRule | undefined {
  const trimmed = source.trim();
  const prefix = trimmed.endsWith('*');
  const words = normalizeWords(trimmed.replace(/\*+$/, '')).map((w) => w.replace(/\*/g, ''));
  const nonEmpty = words.filter((w) => w !== '');
  return nonEmpty.length === 0 ? undefined : { source: trimmed, words: nonEmpty, prefix };
}

/**
 * Rules compiled once: a server's lists are read on every /imagine and the default NSFW list alone has dozens of
 * rules, whose folding and splitting cost more than the rest of the policy. Bounded, as moderators can add rules.
 */
const compiledRules = new Map<string, { rule: WordRule; expected: Runs[] } | null>();
const MAX_COMPILED_RULES = 10_000;

function compiled(source: string): { rule: WordRule; expected: Runs[] } | null {
  let entry = compiledRules.get(source);
  if (entry === undefined) {
    if (compiledRules.size >= MAX_COMPILED_RULES) compiledRules.clear();
    const rule = compileRule(source);
    entry = rule ? { rule, expected: rule.words.map(runsOf) } : null;
    compiledRules.set(source, entry);
  }
  return entry;
}

/** The last prompt's words: the banned list and the NSFW list are checked against the same prompt in a row. */
let lastText: string | undefined;
let lastWords: { words: Runs[]; joined: Runs } | undefined;

function promptWords(text: string): { words: Runs[]; joined: Runs } {
  if (lastText !== text || lastWords === undefined) {
    const normalized = normalizeWords(text);
    lastWords = { words: normalized.map(runsOf), joined: runsOf(normalized.join('')) };
    lastText = text;
  }
  return lastWords;
}

/** The first rule the text breaks, or undefined. */
export function findBrokenRule(text: string, rules: readonly string[]): string | undefined {
  if (rules.length === 0) return undefined;
  const { words, joined } = promptWords(text);
  for (const source of rules) {
    const entry = compiled(source);
    if (entry && matches(words, joined, entry.expected, entry.rule.prefix)) return entry.rule.source;
  }
  return undefined;
}

function matches(words: Runs[], joined: Runs, expected: Runs[], prefix: boolean): boolean {
  const n = expected.length;
  for (let start = 0; start + n <= words.length; start++) {
    let ok = true;
    for (let i = 0; i < n; i++) {
      if (!sameWord(words[start + i]!, expected[i]!, prefix && i === n - 1)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return n === 1 && !prefix && sameWord(joined, expected[0]!, false);
}
