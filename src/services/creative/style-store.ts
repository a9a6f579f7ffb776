import { z } from 'zod';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import { ASPECT_RATIOS, LIMITS } from '../segmind/flux-params.js';
import type { Storage } from '../storage/storage.js';

export const MAX_STYLES = 100;
export const STYLE_NAME_MAX = 32;
export const TEMPLATE_MAX = 1500;
export const DESCRIPTION_MAX = 100;
/** At most this many channels carry a default style of their own; keeps a server's record small. */
export const MAX_CHANNEL_DEFAULTS = 200;
/** Where a template takes the member's prompt. */
export const PROMPT_PLACEHOLDER = '{prompt}';
/** Typed as a style: no style at all, not even a channel's or the server's default. Never a style's name. */
export const NO_STYLE = 'none';
/** How long autocomplete trusts a server's styles: typing is many reads a second, a style changes rarely. */
export const CACHE_TTL_MS = 10_000;
/** Cached servers beyond which expired entries are swept (autocomplete across many servers must not grow forever). */
const CACHE_SWEEP_SIZE = 1_000;

const id = z.string().regex(/^\d{1,25}$/);

export const styleSchema = z.object({
  name: z.string().min(1).max(STYLE_NAME_MAX),
  template: z.string().min(1).max(TEMPLATE_MAX),
  description: z.string().max(DESCRIPTION_MAX).optional(),
  aspect_ratio: z.enum(ASPECT_RATIOS).optional(),
  guidance: z.number().min(LIMITS.guidance.min).max(LIMITS.guidance.max).optional(),
  steps: z.number().int().min(LIMITS.steps.min).max(LIMITS.steps.max).optional(),
  createdBy: id,
  createdAt: z.number(),
});
export type Style = z.infer<typeof styleSchema>;

/**
 * One record per server. Each part falls back on its own, and a damaged style is dropped alone, so one bad field
 * never costs a server its other styles.
 */
const recordSchema = z.object({
  v: z.literal(1).catch(1),
  styles: z
    .array(z.unknown())
    .catch(() => [])
    .transform((items) => items.flatMap((item) => {
      const parsed = styleSchema.safeParse(item);
      return parsed.success ? [parsed.data] : [];
    })),
  /** Style names (matched case-insensitively); null: none. */
  serverDefault: z.string().min(1).max(STYLE_NAME_MAX).nullable().catch(null),
  channelDefaults: z.record(id, z.string().min(1).max(STYLE_NAME_MAX)).catch(() => ({})),
});
export type ServerStyles = z.infer<typeof recordSchema>;

export function emptyStyles(): ServerStyles {
  return { v: 1, styles: [], serverDefault: null, channelDefaults: {} };
}

export const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export function findStyle(styles: ServerStyles, name: string): Style | undefined {
  return styles.styles.find((style) => sameName(style.name, name));
}

/**
 * The styles of each server (`styles:<guildId>`): the styles themselves, the server's default and each channel's.
 * `get` reads fresh (what /imagine applies); `cached` serves autocomplete from a short-lived copy that this process's
 * own writes replace at once (another process's writes show within CACHE_TTL_MS).
 */
export class StyleStore {
  readonly #cache = new Map<string, { at: number; styles: ServerStyles }>();

  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async get(guildId: string): Promise<ServerStyles> {
    const raw: unknown = await this.storage.kv.get(key(guildId));
    const styles = raw === undefined ? emptyStyles() : this.parse(guildId, raw);
    this.remember(guildId, styles);
    return styles;
  }

  async cached(guildId: string): Promise<ServerStyles> {
    const hit = this.#cache.get(guildId);
    if (hit && this.clock.now() - hit.at < CACHE_TTL_MS) return hit.styles;
    return this.get(guildId);
  }

  /**
   * Read-modify-write under the store's lock, so two moderators' edits do not overwrite each other. `change` may
   * throw (a refusal): nothing is written then.
   */
  async update<T>(guildId: string, change: (styles: ServerStyles) => T): Promise<{ styles: ServerStyles; result: T }> {
    return this.storage.withLock(key(guildId), async () => {
      // A copy: the cached record stays as stored if `change` throws halfway.
      const styles = structuredClone(await this.get(guildId));
      const result = change(styles);
      const valid = recordSchema.parse(styles);
      await this.storage.kv.set(key(guildId), valid);
      this.remember(guildId, valid);
      return { styles: valid, result };
    });
  }

  private parse(guildId: string, raw: unknown): ServerStyles {
    const record = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? raw : {};
    const parsed = recordSchema.parse(record);
    const stored = (record as { styles?: unknown }).styles;
    if (Array.isArray(stored) && stored.length !== parsed.styles.length)
      this.log.warn({ guildId, dropped: stored.length - parsed.styles.length }, 'styles record held unreadable styles; they were left out');
    return parsed;
  }

  private remember(guildId: string, styles: ServerStyles): void {
    const now = this.clock.now();
    if (this.#cache.size >= CACHE_SWEEP_SIZE)
      for (const [guild, entry] of this.#cache) if (now - entry.at >= CACHE_TTL_MS) this.#cache.delete(guild);
    this.#cache.set(guildId, { at: now, styles });
  }
}

function key(guildId: string): string {
  return `styles:${guildId}`;
}
