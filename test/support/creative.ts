import { ApplicationCommandOptionType, ChannelType, type APIInteractionDataResolved } from 'discord.js';
import { expect } from 'vitest';
import { definition as adminDefinition } from '../../src/commands/imagine-admin/index.js';
import { definition as imagineDefinition } from '../../src/commands/imagine.js';
import { definition as preferencesDefinition } from '../../src/commands/preferences.js';
import { snowflake, type RecordedRequest, type SentInteraction, type SlashCommandOption } from '../fakes/fake-discord.js';
import { eventually, type Harness } from './harness.js';
import { messageOf, sendImagine, type SentMessage } from './imagine.js';

/** Styles and preferences, end to end: moderators', members' and Discord's side of the conversation. */

export const MANAGE_SERVER = String(1 << 5);
export const EPHEMERAL = 64;

export interface Place {
  guildId: string;
  channelId: string;
}

export interface Actor {
  userId: string;
  permissions?: string;
}

export const moderator = (): Actor => ({ userId: snowflake(), permissions: MANAGE_SERVER });

interface DefinedOption {
  name: string;
  type: number;
  options?: readonly DefinedOption[];
}

const DEFINITIONS: Record<string, readonly DefinedOption[]> = {
  'imagine-admin': adminDefinition.options,
  preferences: preferencesDefinition.options,
  imagine: imagineDefinition.options,
};

/** `['styles', 'add']` and the typed values → the nested options Discord sends, each typed as the definition declares. */
function optionsFor(command: string, path: string[], values: Record<string, string | number | boolean>, focused?: string): SlashCommandOption[] {
  let level = DEFINITIONS[command]!;
  for (const name of path) level = level.find((o) => o.name === name)?.options ?? [];
  const leaf: SlashCommandOption[] = Object.entries(values).map(([name, value]) => {
    const type = level.find((o) => o.name === name)?.type;
    if (type === undefined) throw new Error(`/${command} ${path.join(' ')} has no option ${name}`);
    return { name, type, value, ...(name === focused ? { focused: true } : {}) };
  });
  let options = leaf;
  for (const [i, name] of [...path].reverse().entries())
    options = [{ name, type: i === 0 ? ApplicationCommandOptionType.Subcommand : ApplicationCommandOptionType.SubcommandGroup, options }];
  return options;
}

export interface Reply {
  content: string;
  /** 4 = answered at once, 5 = deferred then edited. */
  callbackType: number;
  /** The flags of the first answer (ephemeral: 64). */
  flags: number;
}

/** `/<command> <path…> option:value…`; resolves with the final reply. Channel options are resolved as text channels. */
export async function run(
  h: Harness,
  place: Place,
  actor: Actor,
  commandLine: string,
  values: Record<string, string | number | boolean> = {},
): Promise<Reply> {
  const [command, ...path] = commandLine.split(' ');
  const options = optionsFor(command!, path, values);
  const resolved: APIInteractionDataResolved = { channels: {} };
  let level = DEFINITIONS[command!]!;
  for (const name of path) level = level.find((o) => o.name === name)?.options ?? [];
  for (const [name, value] of Object.entries(values))
    if (level.find((o) => o.name === name)?.type === Number(ApplicationCommandOptionType.Channel))
      resolved.channels![String(value)] = { id: String(value), name: 'channel', type: ChannelType.GuildText, permissions: '0' };
  const sent = h.discord.sendSlashCommand({ name: command!, ...place, ...actor, options, resolved });
  const callback = await sent.waitForCallback();
  const callbackType = (callback.json as { type: number }).type;
  const flags = messageOf(callback.json).flags ?? 0;
  if (callbackType === 4) return { content: messageOf(callback.json).content ?? '', callbackType, flags };
  const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
  return { content: messageOf(edit.json).content ?? '', callbackType, flags };
}

/** A moderator's `/imagine-admin …`, answered privately; resolves with the text. */
export async function admin(h: Harness, place: Place, actor: Actor, commandLine: string, values: Record<string, string | number | boolean> = {}): Promise<string> {
  const reply = await run(h, place, actor, `imagine-admin ${commandLine}`, values);
  expect(reply.flags & EPHEMERAL, 'moderators are answered privately').toBe(EPHEMERAL);
  return reply.content;
}

/** A member's `/preferences …`, always answered privately; resolves with the text. */
export async function preferences(h: Harness, place: Place, actor: Actor, commandLine: string, values: Record<string, string | number | boolean> = {}): Promise<string> {
  const reply = await run(h, place, actor, `preferences ${commandLine}`, values);
  expect(reply.flags & EPHEMERAL, 'preferences are answered privately').toBe(EPHEMERAL);
  return reply.content;
}

/** The suggestions Discord shows while `option` of `/<command> <path…>` is typed. */
export async function suggestions(
  h: Harness,
  place: Place,
  actor: Actor,
  commandLine: string,
  option: string,
  typed: string,
  others: Record<string, string | number | boolean> = {},
): Promise<Array<{ name: string; value: string | number }>> {
  const [command, ...path] = commandLine.split(' ');
  const sent = h.discord.sendAutocomplete({ name: command!, ...place, ...actor, options: optionsFor(command!, path, { ...others, [option]: typed }, option) });
  const callback = await sent.waitForCallback();
  expect(callback.status).toBe(204);
  expect(callback.json).toMatchObject({ type: 8 });
  return sent.autocompleteChoices() ?? [];
}

export interface Generated {
  sent: SentInteraction;
  /** What Segmind received, one body per image. */
  bodies: Array<Record<string, unknown>>;
  /** The result message as last written. */
  message: SentMessage;
}

/** `/imagine` that is delivered: waits for the result and the settlement of its credits. */
export async function imagine(h: Harness, place: Place, actor: Actor, options: Record<string, string | number | boolean>): Promise<Generated> {
  const before = h.segmind.requests.length;
  const sent = sendImagine(h.discord, options, { ...place, ...actor });
  const edit = await sent.waitForRequest((r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0);
  await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), 'the credits to be settled');
  return { sent, bodies: h.segmind.requests.slice(before).map((r) => r.body as Record<string, unknown>), message: messageOf(edit.json) };
}

/** A new server with a general channel, an art channel and a log channel, for tests that must not share settings. */
export function serverFixture() {
  const ids = { guildId: snowflake(), general: snowflake(), art: snowflake(), modLog: snowflake() };
  return {
    ids,
    spec: {
      id: ids.guildId,
      channels: [
        { id: ids.general, name: 'general' },
        { id: ids.art, name: 'art' },
        { id: ids.modLog, name: 'mod-log' },
      ],
    },
  };
}

/** The lines the bot posted to a channel. */
export function postsIn(h: Harness, channelId: string): string[] {
  return h.discord.requests
    .filter((r) => r.method === 'POST' && r.path === `/channels/${channelId}/messages`)
    .map((r) => (r.json as { content?: string }).content ?? '');
}
