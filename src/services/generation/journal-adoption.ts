import { z } from 'zod';
import type { Logger } from '../../logger.js';
import type { RedisCommandSender } from '../storage/quota/redis-quota-store.js';
import { lua, runLua, type LuaScript } from '../storage/quota/redis-scripts.js';
import { adoptedMarkerKey, instanceLeaseKey, knownInstancesKey } from './instance-lease.js';
import { journalEntryKey, journalIndexKey, type Journal, type JournalEntry } from './journal.js';

/**
 * No job stranded when a process dies (Redis only). Each process holds its journal by its INSTANCE_ID's lease
 * (instance-lease.ts); once a lease is gone (not renewed for its length: the process died, or lost Redis that long),
 * every live process scans for it, and adopts that instance's jobs one by one with an atomic claim: the id moves from
 * the dead instance's index to the adopter's only while the dead lease is still absent and the id is still there, so
 * among several adopters racing exactly one gets each job. The adopter then treats the job exactly as a restarted
 * process would (ImaginePipeline.recoverJob): resumed while its interaction token has life left, else refunded and
 * the member told.
 *
 * The Lua reads and writes the journal's keyv records directly: `<namespace>::<key>` holding `{"value":…}` (see
 * redis-storage.ts); the contract test writes them through the real store and checks the scripts read them.
 */

const adoptionLua = (source: string): LuaScript => lua('journal-adoption', source);

/** Lua: the ids of a keyv index record (absent or unreadable = none), and the record written back. */
const INDEX_HELPERS = `
local function idsOf(raw)
  local ids = {}
  if not raw then return ids end
  local ok, record = pcall(cjson.decode, raw)
  if not ok or type(record) ~= 'table' or type(record.value) ~= 'table' then return ids end
  for _, id in ipairs(record.value) do
    if type(id) == 'string' then ids[#ids + 1] = id end
  end
  return ids
end
local function writeIds(key, ids)
  local parts = {}
  for i, id in ipairs(ids) do parts[i] = cjson.encode(id) end
  -- by hand: cjson writes an empty list as {}
  redis.call('SET', key, '{"value":[' .. table.concat(parts, ',') .. ']}', 'KEEPTTL')
end
`;

/**
 * KEYS: known instances, the instance's lease, its index. ARGV: instanceId.
 * Returns {0} while its lease lives, else {1, ids…}. An instance without lease and without jobs is forgotten (it
 * joins again when it next takes its lease), so the set stays as small as the fleet.
 */
const INSPECT = adoptionLua(`${INDEX_HELPERS}
if redis.call('EXISTS', KEYS[2]) == 1 then return {0} end
local ids = idsOf(redis.call('GET', KEYS[3]))
if #ids == 0 then redis.call('SREM', KEYS[1], ARGV[1]) end
local reply = {1}
for _, id in ipairs(ids) do reply[#reply + 1] = id end
return reply
`);

/**
 * KEYS: dead lease, dead index, adopter's index, entry, dead instance's adopted marker.
 * ARGV: job id, dead instanceId, adopter's instanceId, marker lifetime ms.
 * Returns 1 when claimed: the id left the dead index and joined the adopter's, and the entry names its new owner.
 * Returns 0 when the dead lease is back (its process returned: its own again), the id is no longer in that index
 * (another adopter was first), or there is nothing to run (the entry is gone, or another instance owns it: a stale
 * copy of the id, which is dropped from the dead index).
 */
const CLAIM = adoptionLua(`${INDEX_HELPERS}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local rest, found = {}, false
for _, id in ipairs(idsOf(redis.call('GET', KEYS[2]))) do
  if id == ARGV[1] then found = true else rest[#rest + 1] = id end
end
if not found then return 0 end
writeIds(KEYS[2], rest)
local entry = redis.call('GET', KEYS[4])
if not entry then return 0 end
local owner = string.match(entry, '[{,]"owner":"([%w_.%-]*)"')
if owner and owner ~= ARGV[2] then return 0 end
local marked, n = string.gsub(entry, '([{,])"owner":"[%w_.%-]*"', '%1"owner":"' .. ARGV[3] .. '"', 1)
if n == 0 then marked, n = string.gsub(entry, '^{"value":{', '{"value":{"owner":"' .. ARGV[3] .. '",', 1) end
if n == 1 then redis.call('SET', KEYS[4], marked, 'KEEPTTL') end
local mine = idsOf(redis.call('GET', KEYS[3]))
local present = false
for _, id in ipairs(mine) do
  if id == ARGV[1] then present = true end
end
if not present then mine[#mine + 1] = ARGV[1] end
writeIds(KEYS[3], mine)
redis.call('SET', KEYS[5], ARGV[3], 'PX', ARGV[4])
return 1
`);

/** How long a dead instance's "adopted from" marker is kept: longer than any Redis outage a process could survive. */
const MARKER_MS = 7 * 24 * 60 * 60_000;

/** {0} (alive) or {1, ids…} (orphaned). */
const inspectReply = z.tuple([z.coerce.number().int()]).rest(z.string());
const claimReply = z.coerce.number().int();

export interface JournalAdoptionOptions {
  client: RedisCommandSender;
  /** The storage namespace (the keyv records are `<namespace>::<key>`, the lease keys `<namespace>:…`). */
  namespace: string;
  /** This process's INSTANCE_ID: it adopts into its own journal. */
  instanceId: string;
  journal: Journal;
  /** ImaginePipeline.recoverJob: what a restart does with one unfinished job. */
  recoverJob: (job: JournalEntry, log: Logger) => Promise<void>;
  logger: Logger;
  /** How often orphaned journals are looked for: half the lease by default (app.ts). */
  scanEveryMs: number;
}

export class JournalAdoption {
  readonly #opts: JournalAdoptionOptions;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<number> | undefined;
  #stopped = false;
  #failing = false;

  constructor(opts: JournalAdoptionOptions) {
    this.#opts = opts;
  }

  start(): void {
    if (this.#stopped || this.#timer) return;
    this.#timer = setInterval(() => void this.scan(), this.#opts.scanEveryMs);
    this.#timer.unref();
    this.#opts.logger.info({ everyMs: this.#opts.scanEveryMs }, 'watching for unfinished jobs of instances whose lease is gone');
    void this.scan();
  }

  /** No new adoption starts; resolves once a scan under way has handed over what it claimed. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#scanning?.catch(() => undefined);
  }

  /** One look for orphaned journals; resolves with how many jobs this process adopted. Never rejects. */
  scan(): Promise<number> {
    this.#scanning ??= this.#scan().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async #scan(): Promise<number> {
    const { client, namespace, instanceId, logger } = this.#opts;
    let adopted = 0;
    try {
      const instances = z.array(z.string()).parse(await client.sendCommand(['SMEMBERS', knownInstancesKey(namespace)]));
      for (const dead of instances) {
        if (dead === instanceId || this.#stopped) continue;
        const reply = inspectReply.parse(
          await runLua(client, INSPECT, [knownInstancesKey(namespace), instanceLeaseKey(namespace, dead), this.#record(journalIndexKey(dead))], [dead]),
        );
        const [orphaned, ...ids] = reply;
        if (orphaned !== 1 || ids.length === 0) continue;
        logger.warn({ instance: dead, jobs: ids.length }, 'found unfinished jobs of an instance whose lease is gone: adopting them');
        for (const id of ids) {
          if (this.#stopped) break;
          if (await this.#adopt(dead, id)) adopted += 1;
        }
      }
      this.#failing = false;
    } catch (error) {
      // Redis outages are logged by the connection; one line here says what is at stake, once.
      if (!this.#failing) logger.warn({ err: error }, 'could not look for orphaned jobs; retrying at the next scan');
      this.#failing = true;
    }
    return adopted;
  }

  async #adopt(dead: string, id: string): Promise<boolean> {
    const { client, namespace, instanceId, journal, logger } = this.#opts;
    const keys = [
      instanceLeaseKey(namespace, dead),
      this.#record(journalIndexKey(dead)),
      this.#record(journalIndexKey(instanceId)),
      this.#record(journalEntryKey(id)),
      adoptedMarkerKey(namespace, dead),
    ];
    const claimed = await journal.adopt(id, async () => {
      const reply = claimReply.parse(await runLua(client, CLAIM, keys, [id, dead, instanceId, String(MARKER_MS)]));
      return reply === 1;
    });
    if (!claimed) return false;
    const job = await journal.get(id);
    if (job === undefined) {
      // Unreadable: nothing can be run or told; its reservation is refunded by the sweeper.
      await journal.remove(id);
      return false;
    }
    const jobLog = logger.child({ jobId: job.id, guildId: job.guildId, userId: job.userId, adoptedFrom: dead });
    jobLog.warn('adopted an unfinished job from an instance whose lease is gone');
    try {
      await this.#opts.recoverJob(job, jobLog);
    } catch (error) {
      // Still in this instance's journal: this process's next start deals with it.
      jobLog.error({ err: error }, 'could not resume or refund an adopted job');
    }
    return true;
  }

  #record(key: string): string {
    return `${this.#opts.namespace}::${key}`;
  }
}
