import { z } from 'zod';
import { SERVER_LANGUAGES } from '../../i18n/locales.js';
import type { Logger } from '../../logger.js';
import type { Storage } from '../storage/storage.js';

/** Built-in NSFW vocabulary a new server starts with; moderators add and remove words from there. */
export const DEFAULT_NSFW_WORDS = [
  'nsfw',
  'nude',
  'nudes',
  'nudity',
  'naked',
  'porn*',
  'sex',
  'sexy',
  'explicit',
  'hentai',
  'topless',
  'erotic*',
  'lingerie',
  'genitals',
] as const;

export const NSFW_POLICIES = ['off', 'age_restricted'] as const;
export type NsfwPolicy = (typeof NSFW_POLICIES)[number];

/** What happens to an image the classifier flags: posted as a spoiler, withheld, or posted as is. */
export const IMAGE_CHECK_ACTIONS = ['off', 'spoiler', 'block'] as const;
export type ImageCheckAction = (typeof IMAGE_CHECK_ACTIONS)[number];

const id = z.string().regex(/^\d{1,25}$/);
const count = z.number().int().min(0);

const actorStamp = z.object({ by: id, at: z.number(), reason: z.string().max(500) });

/**
 * One record per server. Fallbacks are functions so every record gets its own arrays and objects. Every field falls back on its own when it cannot be read (a record written by an older
 * version, or damaged), so one bad field never costs a server its other settings.
 */
const settingsSchema = z.object({
  version: z.literal(1).catch(1),
  /** null: follow the bot-wide default from the environment. */
  dailyCredits: count.nullable().catch(null),
  cooldownSeconds: count.nullable().catch(null),
  guildDailyCap: count.nullable().catch(null),
  maxSamples: z.number().int().min(1).max(4).nullable().catch(null),
  maxSteps: z.number().int().min(1).max(50).nullable().catch(null),
  moderatorRoleId: id.nullable().catch(null),
  logChannelId: id.nullable().catch(null),
  /** Where one line per delivered result is posted (who, prompt, link); null: nowhere. */
  generationLogChannelId: id.nullable().catch(null),
  nsfwPolicy: z.enum(NSFW_POLICIES).catch('off'),
  exemptModerators: z.boolean().catch(true),
  paused: actorStamp.nullable().catch(null),
  allowedChannels: z.array(id).catch(() => []),
  bannedWords: z.array(z.string().min(1).max(100)).catch(() => []),
  nsfwWords: z.array(z.string().min(1).max(100)).catch(() => [...DEFAULT_NSFW_WORDS]),
  roleOverrides: z
    .record(id, z.object({ dailyCredits: count.nullable(), cooldownSeconds: count.nullable() }))
    .catch(() => ({})),
  memberAllowances: z.record(id, count).catch(() => ({})),
  blocked: z.record(id, actorStamp).catch(() => ({})),
  /** null: follow DEFAULT_IMAGE_CHECK. */
  imageCheck: z.enum(IMAGE_CHECK_ACTIONS).nullable().catch(null),
  /** Attach the flagged image itself (as a spoiler) to its report in the log channel. */
  logFlaggedImages: z.boolean().catch(false),
  /** Flagged images per member per UTC day before the member is blocked automatically; 0 = never. */
  flagLimit: count.catch(0),
  /** `/imagine private:true` (and the preference) is allowed here: moderators decide, off by default. */
  allowPrivate: z.boolean().catch(false),
  /** Where ⭐ Share (and the starboard) posts results; null: no gallery. */
  galleryChannelId: id.nullable().catch(null),
  /** ⭐ reactions from distinct members (the author's own not counted) that share a result automatically; 0 = off. */
  galleryStars: count.catch(0),
  /** The language every text about this server is in; `auto`: each member's own, the server's Discord locale in channel posts. */
  language: z.enum(SERVER_LANGUAGES).catch('auto'),
});

export type GuildSettings = z.infer<typeof settingsSchema>;

/** Every field's fallback, worked out once: parsing `{}` runs every fallback, and servers without settings ask often. */
const DEFAULT_SETTINGS: GuildSettings = settingsSchema.parse({});

/** The defaults are plain JSON; parsing them is ~4× cheaper than structuredClone, and a server without settings reads them on every /imagine. */
const DEFAULT_SETTINGS_JSON = JSON.stringify(DEFAULT_SETTINGS);

export function newGuildSettings(): GuildSettings {
  return JSON.parse(DEFAULT_SETTINGS_JSON) as GuildSettings;
}

/** Bot-wide defaults from the environment; a server's own values win. */
export interface BotDefaults {
  dailyCredits: number;
  cooldownSeconds: number;
  guildDailyCap: number;
  maxSamples: number;
  maxSteps: number;
  /** DEFAULT_IMAGE_CHECK; `spoiler` when not given (the environment's own default). */
  imageCheck?: ImageCheckAction;
  /** MAX_DAILY_CREDITS: the operator's ceiling on any member's daily allowance; 0 or absent = none. */
  maxDailyCredits?: number;
  /** MAX_GUILD_DAILY_CREDITS: the operator's ceiling on a server's daily cap; 0 or absent = none. */
  maxGuildDailyCredits?: number;
}

/** A member's daily allowance under the operator's ceiling (0 = no ceiling). */
export function allowanceUnderCeiling(allowance: number, ceiling: number): number {
  return ceiling > 0 ? Math.min(allowance, ceiling) : allowance;
}

/** A server's daily cap under the operator's ceiling: "no cap" (0) means the ceiling itself. */
export function serverCapUnderCeiling(cap: number, ceiling: number): number {
  return ceiling > 0 && (cap === 0 || cap > ceiling) ? ceiling : cap;
}

/** A server's settings with the bot defaults filled in: what actually applies. */
export interface EffectiveSettings {
  dailyCredits: number;
  cooldownSeconds: number;
  guildDailyCap: number;
  maxSamples: number;
  maxSteps: number;
  imageCheck: ImageCheckAction;
}

export function effectiveSettings(settings: GuildSettings, defaults: BotDefaults): EffectiveSettings {
  return {
    // Applied on every read, so a value stored before the operator set a ceiling cannot escape it.
    dailyCredits: allowanceUnderCeiling(settings.dailyCredits ?? defaults.dailyCredits, defaults.maxDailyCredits ?? 0),
    cooldownSeconds: settings.cooldownSeconds ?? defaults.cooldownSeconds,
    guildDailyCap: serverCapUnderCeiling(settings.guildDailyCap ?? defaults.guildDailyCap, defaults.maxGuildDailyCredits ?? 0),
    maxSamples: settings.maxSamples ?? defaults.maxSamples,
    maxSteps: settings.maxSteps ?? defaults.maxSteps,
    imageCheck: settings.imageCheck ?? defaults.imageCheck ?? 'spoiler',
  };
}

export class GuildSettingsRepository {
  constructor(
    private readonly storage: Storage,
    private readonly log: Logger,
  ) {}

  async get(guildId: string): Promise<GuildSettings> {
    const raw: unknown = await this.storage.kv.get(key(guildId));
    if (raw === undefined) return newGuildSettings();
    const record = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? raw : {};
    const strict = settingsSchema.safeParse(raw);
    // Read on every /imagine: a sound record is parsed once.
    if (strict.success && (record as { version?: unknown }).version === 1) return strict.data;
    this.log.warn({ guildId }, 'guild settings record was unreadable in part; damaged fields reset to defaults');
    // Cannot fail: every field has a fallback.
    return settingsSchema.parse(record);
  }

  /** Read-modify-write under the store's lock, so two moderators' edits do not overwrite each other. */
  async update(guildId: string, change: (settings: GuildSettings) => void): Promise<GuildSettings> {
    return this.storage.withLock(key(guildId), async () => {
      const settings = await this.get(guildId);
      change(settings);
      const valid = settingsSchema.parse(settings);
      await this.storage.kv.set(key(guildId), valid);
      return valid;
    });
  }
}

function key(guildId: string): string {
  return `settings:${guildId}`;
}
