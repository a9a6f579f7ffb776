import { z } from 'zod';
import { ASPECT_RATIOS, LIMITS, OUTPUT_FORMATS } from '../segmind/flux-params.js';
import type { Storage } from '../storage/storage.js';
import { STYLE_NAME_MAX } from './style-store.js';

/**
 * A member's own defaults in one server, each optional. Every field falls back to "not set" on its own when it cannot
 * be read (an older or damaged record), so one bad value never costs the member the others.
 */
const preferencesSchema = z.object({
  aspect_ratio: z.enum(ASPECT_RATIOS).optional().catch(undefined),
  guidance: z.number().min(LIMITS.guidance.min).max(LIMITS.guidance.max).optional().catch(undefined),
  steps: z.number().int().min(LIMITS.steps.min).max(LIMITS.steps.max).optional().catch(undefined),
  samples: z.number().int().min(LIMITS.samples.min).max(LIMITS.samples.max).optional().catch(undefined),
  output_format: z.enum(OUTPUT_FORMATS).optional().catch(undefined),
  output_quality: z.number().int().min(LIMITS.outputQuality.min).max(LIMITS.outputQuality.max).optional().catch(undefined),
  /** A style's name, or `none`: no style, not even the channel's or the server's default. */
  style: z.string().min(1).max(STYLE_NAME_MAX).optional().catch(undefined),
  private: z.boolean().optional().catch(undefined),
});
export type Preferences = z.infer<typeof preferencesSchema>;
export const PREFERENCE_NAMES = Object.keys(preferencesSchema.shape) as Array<keyof Preferences>;

/** Each member's preferences per server (`prefs:<guildId>:<userId>`). */
export class PreferenceStore {
  constructor(private readonly storage: Storage) {}

  async get(guildId: string, userId: string): Promise<Preferences> {
    const raw: unknown = await this.storage.kv.get(key(guildId, userId));
    if (raw === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) return {};
    return withoutUnset(preferencesSchema.parse(raw));
  }

  /** Merges `changes` into the stored preferences (under the store's lock: two quick `set`s both count). */
  async set(guildId: string, userId: string, changes: Preferences): Promise<Preferences> {
    return this.storage.withLock(key(guildId, userId), async () => {
      const next = withoutUnset(preferencesSchema.parse({ ...(await this.get(guildId, userId)), ...withoutUnset(changes) }));
      await this.storage.kv.set(key(guildId, userId), next);
      return next;
    });
  }

  /** Clears them all; true when there was anything to clear. */
  async reset(guildId: string, userId: string): Promise<boolean> {
    return this.storage.withLock(key(guildId, userId), async () => {
      const had = Object.keys(await this.get(guildId, userId)).length > 0;
      await this.storage.kv.delete(key(guildId, userId));
      return had;
    });
  }
}

function withoutUnset(preferences: Preferences): Preferences {
  return Object.fromEntries(Object.entries(preferences).filter(([, value]) => value !== undefined));
}

function key(guildId: string, userId: string): string {
  return `prefs:${guildId}:${userId}`;
}
