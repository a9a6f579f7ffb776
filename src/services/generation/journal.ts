import { z } from 'zod';
import { SUPPORTED_LOCALES } from '../../i18n/locales.js';
import { fluxDevParamsSchema } from '../segmind/flux-params.js';
import { appliedStyleSchema } from '../results/result-store.js';
import type { Storage } from '../storage/storage.js';

const reservationSchema = z.object({
  id: z.string(),
  guildId: z.string(),
  userId: z.string(),
  credits: z.number().int(),
  fromDaily: z.number().int(),
  fromBonus: z.number().int(),
  day: z.number().int(),
  createdAt: z.number(),
  expiresAt: z.number(),
});

const entrySchema = z.object({
  v: z.literal(1),
  id: z.string(),
  guildId: z.string(),
  channelId: z.string(),
  userId: z.string(),
  applicationId: z.string(),
  /** The interaction token: lets any restart edit the original reply while it lives (15 minutes). */
  token: z.string(),
  createdAt: z.number(),
  tokenExpiresAt: z.number(),
  attachmentSizeLimit: z.number(),
  params: fluxDevParamsSchema,
  reservation: reservationSchema,
  /** `delivering` means the result may already be posted: a restart checks before posting again. */
  state: z.enum(['queued', 'delivering']),
  /**
   * The channel was marked age-restricted when the request was made, so a resumed job treats flagged images as the
   * first run would. Absent in entries written before image checks: counts as not age-restricted (the safe side).
   */
  channelNsfw: z.boolean().optional(),
  /**
   * Set when a live process adopted the job from a dead one (journal-adoption.ts): the INSTANCE_ID that runs it now.
   * Absent: the instance whose index it was first written to.
   */
  owner: z.string().optional(),
  /** The server style `params.prompt` was expanded from (shown in the result, kept by its buttons). */
  style: appliedStyleSchema.optional(),
  /** An ephemeral request: its result only the member sees (by direct message once the token is dead). */
  private: z.boolean().optional(),
  /** Lines the result carries from the admission (a preference cut to the server's limits). */
  notes: z.array(z.string()).optional(),
  /** The server had a gallery when the request was made: the result offers ⭐ Share. */
  gallery: z.boolean().optional(),
  /**
   * The language of what answers the member (their reply, their DM) and of channel posts nobody interacted with (a
   * late result), resolved when the request was made. Absent in older entries, or no longer supported: English.
   */
  locale: z.enum(SUPPORTED_LOCALES).optional().catch(undefined),
  channelLocale: z.enum(SUPPORTED_LOCALES).optional().catch(undefined),
});

export type JournalEntry = z.infer<typeof entrySchema>;

/**
 * Every accepted request is written here before Segmind is called, and removed once its credits are settled, so a
 * crash or a restart can resume or refund it. Each bot process keeps its own index under a stable INSTANCE_ID, so
 * only that process writes it and a restarted process finds exactly its own unfinished work. On Redis, "only that
 * process" is enforced by a lease on the INSTANCE_ID (instance-lease.ts), taken before the index is first read.
 */
const indexSchema = z.array(z.string());

export class Journal {
  /** This instance's unfinished job ids: only this process writes them, so memory is the truth once loaded. */
  #ids: Set<string> | undefined;
  #loading: Promise<Set<string>> | undefined;
  #saving: Promise<void> | undefined;
  #nextSave: Promise<void> | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly instanceId: string,
  ) {}

  /** The entry and the index are written side by side (one commit on SQLite); an id without an entry is skipped. */
  async add(entry: JournalEntry): Promise<void> {
    const ids = await this.#index();
    const known = ids.has(entry.id);
    ids.add(entry.id);
    try {
      await Promise.all([this.storage.kv.set(entryKey(entry.id), entry), known ? undefined : this.#saveIndex()]);
    } catch (error) {
      // The job will not run (its credits are refunded): it must not be resumed after a restart either.
      if (!known) ids.delete(entry.id);
      throw error;
    }
  }

  /** Written from the entry the caller holds (no read and parse on the delivery path); only while it is still ours. */
  async markDelivering(entry: JournalEntry): Promise<void> {
    const ids = await this.#index();
    if (ids.has(entry.id)) await this.storage.kv.set(entryKey(entry.id), { ...entry, state: 'delivering' });
  }

  async remove(id: string): Promise<void> {
    const ids = await this.#index();
    await Promise.all([ids.delete(id) ? this.#saveIndex() : undefined, this.storage.kv.delete(entryKey(id))]);
  }

  async get(id: string): Promise<JournalEntry | undefined> {
    const parsed = entrySchema.safeParse(await this.storage.kv.get(entryKey(id)));
    return parsed.success ? parsed.data : undefined;
  }

  /**
   * Unfinished requests of this instance; unreadable entries are dropped (their reservation is swept and refunded).
   * An entry another instance adopted is not this one's any more, even if this index still names it (it was written
   * back from memory by a process whose lease had lapsed): it leaves the index and is not run here.
   */
  async list(): Promise<JournalEntry[]> {
    const ids = await this.#index();
    const entries = await Promise.all([...ids].map((id) => this.get(id)));
    const foreign = entries.filter((e) => e?.owner !== undefined && e.owner !== this.instanceId);
    if (foreign.length > 0) {
      for (const entry of foreign) ids.delete(entry!.id);
      await this.#saveIndex();
    }
    return entries.filter((e): e is JournalEntry => e !== undefined && !foreign.includes(e));
  }

  /**
   * Takes over a job from another instance's journal: `claim` moves its id from that index to this one's in storage
   * (one atomic script, journal-adoption.ts). It runs while no write of this index is under way or can start, and a
   * claimed id joins the index in memory before any later write, so no write from memory can drop it again.
   */
  async adopt(id: string, claim: () => Promise<boolean>): Promise<boolean> {
    const ids = await this.#index();
    for (let pending = this.#nextSave ?? this.#saving; pending; pending = this.#nextSave ?? this.#saving) {
      await pending.catch(() => undefined);
    }
    const claiming = claim().then((claimed) => {
      if (claimed) ids.add(id);
      return claimed;
    });
    const asWrite = claiming.then(() => undefined);
    this.#saving = asWrite;
    void asWrite.catch(() => undefined).finally(() => {
      if (this.#saving === asWrite) this.#saving = undefined;
    });
    return claiming;
  }

  async #index(): Promise<Set<string>> {
    if (this.#ids) return this.#ids;
    this.#loading ??= this.storage.kv.get(this.indexKey()).then(
      (raw: unknown) => {
        const parsed = indexSchema.safeParse(raw);
        this.#ids ??= new Set(parsed.success ? parsed.data : []);
        return this.#ids;
      },
      (error: unknown) => {
        this.#loading = undefined;
        throw error;
      },
    );
    return this.#loading;
  }

  /**
   * Resolves once a write of the index that includes every change made before the call has succeeded. Changes made
   * while one write is under way share the next one: a burst of jobs rewrites the list a few times, not once each.
   */
  #saveIndex(): Promise<void> {
    if (this.#nextSave) return this.#nextSave;
    const write = (): Promise<void> => {
      this.#nextSave = undefined;
      const saving = this.storage.kv.set(this.indexKey(), [...(this.#ids ?? [])]).then(() => undefined);
      this.#saving = saving;
      void saving.catch(() => undefined).finally(() => {
        if (this.#saving === saving) this.#saving = undefined;
      });
      return saving;
    };
    if (!this.#saving) return write();
    this.#nextSave = this.#saving.catch(() => undefined).then(write);
    return this.#nextSave;
  }

  private indexKey(): string {
    return journalIndexKey(this.instanceId);
  }
}

/** The storage key of an instance's index (a JSON list of job ids). */
export function journalIndexKey(instanceId: string): string {
  return `journal:index:${instanceId}`;
}

/** The storage key of one job's entry. */
export function journalEntryKey(id: string): string {
  return `journal:job:${id}`;
}

const entryKey = journalEntryKey;
