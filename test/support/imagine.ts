import { ApplicationCommandOptionType } from 'discord.js';
import { definition } from '../../src/commands/imagine.js';
import type { FakeDiscord, SentInteraction, SlashCommandSpec } from '../fakes/fake-discord.js';

const OPTION_TYPES = new Map<string, number>(definition.options.map((o) => [o.name, o.type]));

/** Sends `/imagine` as a Discord client would, typing each option as the command definition declares it. */
export function sendImagine(
  discord: FakeDiscord,
  options: Record<string, string | number | boolean>,
  spec: Omit<SlashCommandSpec, 'name' | 'options'> = {},
): SentInteraction {
  return discord.sendSlashCommand({
    ...spec,
    name: 'imagine',
    options: Object.entries(options).map(([name, value]) => ({
      name,
      type: OPTION_TYPES.get(name) ?? ApplicationCommandOptionType.String,
      value,
    })),
  });
}

export interface SentEmbed {
  title?: string;
  description?: string;
  url?: string;
  image?: { url: string };
  fields?: Array<{ name: string; value: string }>;
}

export interface SentMessage {
  content?: string;
  embeds?: SentEmbed[];
  flags?: number;
  attachments?: Array<{ id: string | number; filename: string }>;
}

/** The message body of a recorded edit or callback (`payload_json` for multipart uploads). */
export function messageOf(json: unknown): SentMessage {
  const value = json as { data?: SentMessage } & SentMessage;
  return value.data ?? value;
}

export function fieldsOf(embed: SentEmbed | undefined): Record<string, string> {
  return Object.fromEntries((embed?.fields ?? []).map((f) => [f.name, f.value]));
}
