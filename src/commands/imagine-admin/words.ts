/** `/imagine-admin words add|remove|list|test|reset`: the banned and NSFW word lists. */
import { ApplicationCommandOptionType, escapeMarkdown } from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { DEFAULT_NSFW_WORDS, type GuildSettings } from '../../services/usage/guild-settings.js';
import { compileRule, findBrokenRule } from '../../services/usage/word-filter.js';
import { code, describeNsfwPolicy, fitList, plural, truncate } from './format.js';
import { handler, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
import { choicesOf, group, line, subcommand, text, type BasicOption } from './options.js';

const MAX_WORDS_PER_LIST = 500;
const MAX_PHRASE_LENGTH = 100;
const MAX_TEST_PROMPT_LENGTH = 2000;
/** `words add` takes several phrases at once, separated by commas. */
const MAX_ADD_LENGTH = 2000;
/** How much of a removed list the audit entry names (the log channel takes 2000 characters a message). */
const AUDIT_LIST_BUDGET = 1500;

const WORD_LISTS = ['banned', 'nsfw'] as const;
type WordList = (typeof WORD_LISTS)[number];

const wordList = (): BasicOption => ({
  type: ApplicationCommandOptionType.String,
  name: 'list',
  description: 'Which word list',
  choices: choicesOf(WORD_LISTS),
  required: true,
});

export const wordsGroup = group('words', 'Banned and NSFW word lists', [
  subcommand('add', 'Add words or phrases (end with * for a prefix)', [
    text('phrase', 'A word or phrase, or several separated by commas', MAX_ADD_LENGTH, true),
    wordList(),
  ]),
  subcommand('remove', 'Remove a word or phrase', [text('phrase', 'Word or phrase', MAX_PHRASE_LENGTH, true), wordList()]),
  subcommand('list', 'Show a word list', [
    wordList(),
    { type: ApplicationCommandOptionType.Boolean, name: 'export', description: 'Attach the whole list as words.txt (one per line)' },
  ]),
  subcommand('test', 'Check a prompt against the word lists', [text('prompt', 'The prompt', MAX_TEST_PROMPT_LENGTH, true)]),
  subcommand('reset', 'Restore a list (banned: empty, nsfw: built-in)', [wordList()]),
]);

const listOnly = z.object({ list: z.enum(WORD_LISTS, { error: 'must be banned or nsfw' }) });
const phraseInList = z.object({ phrase: line(MAX_PHRASE_LENGTH), list: listOnly.shape.list });
const phrasesInList = z.object({ phrase: line(MAX_ADD_LENGTH), list: listOnly.shape.list });

/** Why a phrase of a `words add` list was not added. */
type Skipped = { phrase: string; why: string };

export function wordsHandlers({ change }: AdminTools): Record<PathOf<typeof wordsGroup>, AdminHandler> {
  return {
    'words/add': handler(phrasesInList, async (context, { phrase: typed, list }) => {
      const { phrases, skipped } = splitPhrases(typed);
      let added: string[] = [];
      await change(context, `added to the ${list} words`, (settings) => {
        const words = wordsOf(settings, list);
        const known = new Set(words.map((w) => w.toLowerCase()));
        added = [];
        for (const phrase of phrases) {
          if (known.has(phrase.toLowerCase())) skipped.push({ phrase, why: 'already in the list' });
          else if (words.length + added.length >= MAX_WORDS_PER_LIST) skipped.push({ phrase, why: `the list is full (${MAX_WORDS_PER_LIST})` });
          else added.push(phrase);
        }
        // Nothing to add: nothing is stored nor audited, and the moderator is told why.
        if (added.length === 0) throw new UserFacingError(nothingAdded(skipped, list), skipped.length === 1 ? undefined : 'invalid_options');
        setWords(settings, list, [...words, ...added]);
        return fitList(added.map(code), ', ', AUDIT_LIST_BUDGET);
      });
      const first = added[0]!;
      const lines = [
        `✅ Added ${fitList(added.map(code), ', ', 1200)} to the ${list} list. Disguises like \`${disguise(first)}\` are caught too.`,
        ...(skipped.length > 0 ? [`Skipped ${plural(skipped.length, 'phrase')}: ${fitList(skipped.map(({ phrase, why }) => `${code(phrase)} (${why})`), ', ', 600)}`] : []),
      ];
      return lines.join('\n');
    }),

    'words/remove': handler(phraseInList, async (context, { phrase, list }) => {
      await change(context, `removed from the ${list} words`, (settings) => {
        const words = wordsOf(settings, list);
        const index = words.findIndex((w) => w.toLowerCase() === phrase.toLowerCase());
        if (index < 0) throw new UserFacingError(`${code(phrase)} is not in the ${list} list.`);
        setWords(settings, list, words.filter((_, i) => i !== index));
        return code(phrase);
      });
      return `✅ Removed ${code(phrase)} from the ${list} list.`;
    }),

    'words/list': handler(listOnly.extend({ export: z.boolean({ error: 'must be true or false' }).optional() }), ({ settings }, options) => {
      const words = wordsOf(settings, options.list);
      const title = options.list === 'banned' ? 'Banned words (refused everywhere)' : `NSFW words (${describeNsfwPolicy(settings)})`;
      if (words.length === 0) return Promise.resolve(`**${title}**: none.`);
      if (options.export === true)
        // One phrase per line: what `words add` takes back, joined with commas, after a `words reset`.
        return Promise.resolve({
          content: `**${title}** (${words.length}): attached as \`words.txt\`, one per line.`,
          files: [{ name: 'words.txt', data: Buffer.from(`${words.join('\n')}\n`) }],
        });
      return Promise.resolve(`**${title}** (${words.length})\n${fitList(words.map(code), ', ', 1850)}`);
    }),

    'words/test': handler(z.object({ prompt: line(MAX_TEST_PROMPT_LENGTH) }), ({ settings }, { prompt }) =>
      Promise.resolve(describeWordTest(prompt, settings)),
    ),

    'words/reset': handler(listOnly, async (context, { list }) => {
      await change(context, `reset the ${list} words`, (settings) => {
        const before = wordsOf(settings, list);
        const next: readonly string[] = list === 'banned' ? [] : DEFAULT_NSFW_WORDS;
        setWords(settings, list, [...next]);
        // The audit names what was removed, so a reset by mistake can be undone with `words add`.
        const kept = new Set(next.map((w) => w.toLowerCase()));
        const removed = before.filter((w) => !kept.has(w.toLowerCase()));
        const what = list === 'banned' ? 'emptied' : `back to the ${DEFAULT_NSFW_WORDS.length} built-in words`;
        return `${what}; removed ${removed.length === 0 ? 'nothing' : `${plural(removed.length, 'phrase')}: ${fitList(removed.map(code), ', ', AUDIT_LIST_BUDGET)}`}`;
      });
      return list === 'banned' ? '✅ The banned list is empty.' : `✅ The NSFW list is back to its ${DEFAULT_NSFW_WORDS.length} built-in words.`;
    }),
  };
}

/**
 * A `words add` value as phrases: split at commas, trimmed, duplicates dropped (case-insensitively), each checked as
 * a single phrase is. Those that fail are returned as skipped, with why.
 */
export function splitPhrases(typed: string): { phrases: string[]; skipped: Skipped[] } {
  const phrases: string[] = [];
  const skipped: Skipped[] = [];
  const seen = new Set<string>();
  for (const part of typed.split(',')) {
    const phrase = part.trim();
    if (phrase === '' || seen.has(phrase.toLowerCase())) continue;
    seen.add(phrase.toLowerCase());
    const valid = phraseInList.shape.phrase.safeParse(phrase);
    if (!valid.success) skipped.push({ phrase: truncate(phrase, 40), why: valid.error.issues[0]?.message ?? 'not valid' });
    else if (compileRule(phrase) === undefined) skipped.push({ phrase, why: 'no letters or digits to match' });
    else phrases.push(phrase);
  }
  return { phrases, skipped };
}

/** Why nothing of a `words add` was added; a single phrase keeps the one-line answer. */
function nothingAdded(skipped: Skipped[], list: WordList): string {
  const [only] = skipped;
  if (skipped.length === 1 && only) {
    if (only.why === 'already in the list') return `${code(only.phrase)} is already in the ${list} list.`;
    if (only.why === 'no letters or digits to match') return `${code(only.phrase)} has no letters or digits to match.`;
    if (only.why.startsWith('the list is full')) return `The ${list} list is full (${MAX_WORDS_PER_LIST}).`;
  }
  if (skipped.length === 0) return 'Give at least one word or phrase.';
  return `Nothing was added to the ${list} list: ${fitList(skipped.map(({ phrase, why }) => `${code(phrase)} (${why})`), ', ', 1500)}`;
}

function wordsOf(settings: GuildSettings, list: WordList): readonly string[] {
  return list === 'banned' ? settings.bannedWords : settings.nsfwWords;
}

// Changes replace lists and records instead of editing them in place: a fresh record's empty defaults may be shared.
function setWords(settings: GuildSettings, list: WordList, words: string[]): void {
  if (list === 'banned') settings.bannedWords = words;
  else settings.nsfwWords = words;
}

/** `nsfw` → `n.s.f.w`: shows moderators that the filter sees through separators. */
function disguise(phrase: string): string {
  const word = phrase.split(/\s+/)[0]?.replace(/\*$/, '') ?? phrase;
  return word.length > 1 && word.length <= 12 ? [...word].join('.') : word.toUpperCase();
}

export function describeWordTest(prompt: string, settings: GuildSettings): string {
  const banned = findBrokenRule(prompt, settings.bannedWords);
  const nsfw = findBrokenRule(prompt, settings.nsfwWords);
  const lines = [`**Word test** for “${escapeMarkdown(truncate(prompt, 300))}”`];
  lines.push(banned === undefined ? '• Banned list: no match' : `• Banned list: breaks ${code(banned)} → refused everywhere`);
  if (nsfw === undefined) lines.push('• NSFW list: no match');
  else
    lines.push(
      `• NSFW list: breaks ${code(nsfw)} → ${
        settings.nsfwPolicy === 'age_restricted' ? 'allowed only in age-restricted channels' : 'refused everywhere (NSFW policy is off)'
      }`,
    );
  const verdict =
    banned !== undefined
      ? '❌ This prompt would be refused everywhere.'
      : nsfw === undefined
        ? '✅ This prompt passes the word lists.'
        : settings.nsfwPolicy === 'age_restricted'
          ? '🔞 This prompt would be allowed only in age-restricted channels.'
          : '❌ This prompt would be refused everywhere.';
  lines.push(verdict);
  return lines.join('\n');
}
