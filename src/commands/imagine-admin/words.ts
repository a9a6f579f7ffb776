/** `/imagine-admin words add|remove|list|test|reset`: the banned and NSFW word lists. */
import { ApplicationCommandOptionType } from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { DEFAULT_NSFW_WORDS, type GuildSettings } from '../../services/usage/guild-settings.js';
import { compileRule, findBrokenRule } from '../../services/usage/word-filter.js';
import type { Translator } from '../../i18n/i18n.js';
import { code, describeNsfwPolicy, fitList, moreOf, truncate } from './format.js';
import { english, handler, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
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
      const { t } = context;
      const { phrases, skipped } = splitPhrases(typed);
      let added: string[] = [];
      await change(context, list === 'banned' ? 'addedBanned' : 'addedNsfw', (settings) => {
        const words = wordsOf(settings, list);
        const known = new Set(words.map((w) => w.toLowerCase()));
        added = [];
        for (const phrase of phrases) {
          if (known.has(phrase.toLowerCase())) skipped.push({ phrase, why: ALREADY_LISTED });
          else if (words.length + added.length >= MAX_WORDS_PER_LIST) skipped.push({ phrase, why: `the list is full (${MAX_WORDS_PER_LIST})` });
          else added.push(phrase);
        }
        // Nothing to add: nothing is stored nor audited, and the moderator is told why.
        if (added.length === 0) throw new UserFacingError((t) => nothingAdded(t, skipped, list), skipped.length === 1 ? undefined : 'invalid_options');
        setWords(settings, list, [...words, ...added]);
        const details = fitList(added.map(code), ', ', AUDIT_LIST_BUDGET);
        return () => details;
      });
      const first = added[0]!;
      const lines = [
        t('admin:words.added', { phrases: fitList(added.map(code), ', ', 1200, moreOf(t)), list, disguise: disguise(first) }),
        ...(skipped.length > 0 ? [t('admin:words.skipped', { count: skipped.length, list: describeSkipped(t, skipped, 600) })] : []),
      ];
      return lines.join('\n');
    }),

    'words/remove': handler(phraseInList, async (context, { phrase, list }) => {
      await change(context, list === 'banned' ? 'removedBanned' : 'removedNsfw', (settings) => {
        const words = wordsOf(settings, list);
        const index = words.findIndex((w) => w.toLowerCase() === phrase.toLowerCase());
        if (index < 0) throw new UserFacingError((t) => t('admin:words.notListed', { phrase: code(phrase), list }));
        setWords(settings, list, words.filter((_, i) => i !== index));
        return () => code(phrase);
      });
      return context.t('admin:words.removed', { phrase: code(phrase), list });
    }),

    'words/list': handler(listOnly.extend({ export: z.boolean({ error: 'must be true or false' }).optional() }), ({ t, settings }, options) => {
      const words = wordsOf(settings, options.list);
      const title = options.list === 'banned' ? t('admin:words.bannedTitle') : t('admin:words.nsfwTitle', { policy: describeNsfwPolicy(t, settings) });
      if (words.length === 0) return Promise.resolve(t('admin:words.listEmpty', { title }));
      if (options.export === true)
        // One phrase per line: what `words add` takes back, joined with commas, after a `words reset`.
        return Promise.resolve({
          content: t('admin:words.exported', { title, n: String(words.length) }),
          files: [{ name: 'words.txt', data: Buffer.from(`${words.join('\n')}\n`) }],
        });
      return Promise.resolve(`${t('admin:words.listTitle', { title, n: String(words.length) })}\n${fitList(words.map(code), ', ', 1850, moreOf(t))}`);
    }),

    'words/test': handler(z.object({ prompt: line(MAX_TEST_PROMPT_LENGTH) }), ({ t, settings }, { prompt }) =>
      Promise.resolve(describeWordTest(prompt, settings, t)),
    ),

    'words/reset': handler(listOnly, async (context, { list }) => {
      await change(context, list === 'banned' ? 'resetBanned' : 'resetNsfw', (settings) => {
        const before = wordsOf(settings, list);
        const next: readonly string[] = list === 'banned' ? [] : DEFAULT_NSFW_WORDS;
        setWords(settings, list, [...next]);
        // The audit names what was removed, so a reset by mistake can be undone with `words add`.
        const kept = new Set(next.map((w) => w.toLowerCase()));
        const removed = before.filter((w) => !kept.has(w.toLowerCase()));
        const phrases = fitList(removed.map(code), ', ', AUDIT_LIST_BUDGET);
        return (t) => {
          const what = list === 'banned' ? t('admin:words.emptied') : t('admin:words.backToBuiltIn', { n: String(DEFAULT_NSFW_WORDS.length) });
          return removed.length === 0 ? t('admin:words.resetNothing', { what }) : t('admin:words.resetRemoved', { what, count: removed.length, phrases });
        };
      });
      return list === 'banned' ? context.t('admin:words.bannedReset') : context.t('admin:words.nsfwReset', { n: String(DEFAULT_NSFW_WORDS.length) });
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

const ALREADY_LISTED = 'already in the list';
const NO_LETTERS = 'no letters or digits to match';

/** Why a phrase was skipped, in the reader's language where it is ours (option checks stay as zod words them). */
function whyText(t: Translator, why: string): string {
  if (why === ALREADY_LISTED) return t('admin:words.whyListed');
  if (why === NO_LETTERS) return t('admin:words.whyNoLetters');
  if (why.startsWith('the list is full')) return t('admin:words.whyFull', { n: String(MAX_WORDS_PER_LIST) });
  return why;
}

function describeSkipped(t: Translator, skipped: Skipped[], budget: number): string {
  return fitList(
    skipped.map(({ phrase, why }) => `${code(phrase)} (${whyText(t, why)})`),
    ', ',
    budget,
    moreOf(t),
  );
}

/** Why nothing of a `words add` was added; a single phrase keeps the one-line answer. */
function nothingAdded(t: Translator, skipped: Skipped[], list: WordList): string {
  const [only] = skipped;
  if (skipped.length === 1 && only) {
    if (only.why === ALREADY_LISTED) return t('admin:words.alreadyListed', { phrase: code(only.phrase), list });
    if (only.why === NO_LETTERS) return t('admin:words.noLetters', { phrase: code(only.phrase) });
    if (only.why.startsWith('the list is full')) return t('admin:words.full', { list, n: String(MAX_WORDS_PER_LIST) });
  }
  if (skipped.length === 0) return t('admin:words.giveOne');
  return t('admin:words.nothingAdded', { list, skipped: describeSkipped(t, skipped, 1500) });
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

export function describeWordTest(prompt: string, settings: GuildSettings, t: Translator = english): string {
  const banned = findBrokenRule(prompt, settings.bannedWords);
  const nsfw = findBrokenRule(prompt, settings.nsfwWords);
  const ageRestricted = settings.nsfwPolicy === 'age_restricted';
  const lines: string[] = [t('admin:words.testTitle', { prompt: truncate(prompt, 300) })];
  lines.push(banned === undefined ? t('admin:words.testBannedClear') : t('admin:words.testBannedBroken', { rule: code(banned) }));
  if (nsfw === undefined) lines.push(t('admin:words.testNsfwClear'));
  else
    lines.push(
      t('admin:words.testNsfwBroken', { rule: code(nsfw), where: ageRestricted ? t('admin:shown.nsfwAgeRestricted') : t('admin:words.testNsfwRefused') }),
    );
  const verdict =
    banned !== undefined
      ? t('admin:words.verdictRefused')
      : nsfw === undefined
        ? t('admin:words.verdictPasses')
        : ageRestricted
          ? t('admin:words.verdictAgeRestricted')
          : t('admin:words.verdictRefused');
  lines.push(verdict);
  return lines.join('\n');
}
