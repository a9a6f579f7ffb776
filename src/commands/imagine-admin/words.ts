/** `/imagine-admin words add|remove|list|test|reset`: the banned and NSFW word lists. */
import { ApplicationCommandOptionType, escapeMarkdown } from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { DEFAULT_NSFW_WORDS, type GuildSettings } from '../../services/usage/guild-settings.js';
import { compileRule, findBrokenRule } from '../../services/usage/word-filter.js';
import { code, describeNsfwPolicy, fitList, truncate } from './format.js';
import { handler, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
import { choicesOf, group, line, subcommand, text, type BasicOption } from './options.js';

const MAX_WORDS_PER_LIST = 500;
const MAX_PHRASE_LENGTH = 100;
const MAX_TEST_PROMPT_LENGTH = 2000;

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
  subcommand('add', 'Add a word or phrase (end with * for a prefix)', [
    text('phrase', 'Word or phrase', MAX_PHRASE_LENGTH, true),
    wordList(),
  ]),
  subcommand('remove', 'Remove a word or phrase', [text('phrase', 'Word or phrase', MAX_PHRASE_LENGTH, true), wordList()]),
  subcommand('list', 'Show a word list', [wordList()]),
  subcommand('test', 'Check a prompt against the word lists', [text('prompt', 'The prompt', MAX_TEST_PROMPT_LENGTH, true)]),
  subcommand('reset', 'Restore a list (banned: empty, nsfw: built-in)', [wordList()]),
]);

const listOnly = z.object({ list: z.enum(WORD_LISTS, { error: 'must be banned or nsfw' }) });
const phraseInList = z.object({ phrase: line(MAX_PHRASE_LENGTH), list: listOnly.shape.list });

export function wordsHandlers({ change }: AdminTools): Record<PathOf<typeof wordsGroup>, AdminHandler> {
  return {
    'words/add': handler(phraseInList, async (context, { phrase, list }) => {
      if (compileRule(phrase) === undefined) throw new UserFacingError(`${code(phrase)} has no letters or digits to match.`, 'invalid_options');
      await change(context, `added to the ${list} words`, (settings) => {
        const words = wordsOf(settings, list);
        if (words.some((w) => w.toLowerCase() === phrase.toLowerCase())) throw new UserFacingError(`${code(phrase)} is already in the ${list} list.`);
        if (words.length >= MAX_WORDS_PER_LIST) throw new UserFacingError(`The ${list} list is full (${MAX_WORDS_PER_LIST}).`);
        setWords(settings, list, [...words, phrase]);
        return code(phrase);
      });
      return `✅ Added ${code(phrase)} to the ${list} list. Disguises like \`${disguise(phrase)}\` are caught too.`;
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

    'words/list': handler(listOnly, ({ settings }, { list }) => {
      const words = wordsOf(settings, list);
      const title = list === 'banned' ? 'Banned words (refused everywhere)' : `NSFW words (${describeNsfwPolicy(settings)})`;
      return Promise.resolve(words.length === 0 ? `**${title}**: none.` : `**${title}** (${words.length})\n${fitList(words.map(code), ', ', 1850)}`);
    }),

    'words/test': handler(z.object({ prompt: line(MAX_TEST_PROMPT_LENGTH) }), ({ settings }, { prompt }) =>
      Promise.resolve(describeWordTest(prompt, settings)),
    ),

    'words/reset': handler(listOnly, async (context, { list }) => {
      await change(context, `reset the ${list} words`, (settings) => {
        if (list === 'banned') settings.bannedWords = [];
        else settings.nsfwWords = [...DEFAULT_NSFW_WORDS];
        return list === 'banned' ? 'emptied' : `back to the ${DEFAULT_NSFW_WORDS.length} built-in words`;
      });
      return list === 'banned' ? '✅ The banned list is empty.' : `✅ The NSFW list is back to its ${DEFAULT_NSFW_WORDS.length} built-in words.`;
    }),
  };
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
