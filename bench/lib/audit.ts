/**
 * After a run of our bot: every delivered image charged exactly once, nothing else charged, nothing left open.
 * Compares the bot's own storage (read through its process) with what the fake Discord received.
 */
import type { AuditResult } from '../bot-process.js';
import type { BenchChild } from './child.js';
import { sleep } from './load.js';

export interface ChargeAudit {
  /** Images delivered (final edits with all files), per the fake Discord. */
  deliveredImages: number;
  /** Credits the store holds as used today, all members together. */
  chargedCredits: number;
  /** Members charged more than they received. */
  doubleCharged: number;
  /** Members charged less than they received. */
  underCharged: number;
  serverTotal: number;
  /** The bot's own count of committed images (per-server stats). */
  statsImages: number;
  openReservations: number;
  journaled: number;
  ok: boolean;
}

/** The ledger: images each member received, over every run of this bot process (warm-up included). */
export class Ledger {
  readonly delivered = new Map<string, number>();

  add(userId: string, images: number): void {
    this.delivered.set(userId, (this.delivered.get(userId) ?? 0) + images);
  }

  get total(): number {
    let n = 0;
    for (const v of this.delivered.values()) n += v;
    return n;
  }
}

/** Waits (up to `timeoutMs`) for the bot to settle every job, then compares. */
export async function auditCharges(bot: BenchChild, guildId: string, ledger: Ledger, timeoutMs = 60_000): Promise<ChargeAudit> {
  const userIds = [...ledger.delivered.keys()];
  const deadline = Date.now() + timeoutMs;
  let result: AuditResult;
  for (;;) {
    result = await bot.call<AuditResult>('audit', { guildId, userIds });
    if ((result.openReservations === 0 && result.journaled === 0) || Date.now() > deadline) break;
    await sleep(100);
  }
  let charged = 0;
  let doubleCharged = 0;
  let underCharged = 0;
  for (const [userId, images] of ledger.delivered) {
    const used = result.usedToday[userId] ?? 0;
    charged += used;
    if (used > images) doubleCharged++;
    if (used < images) underCharged++;
  }
  const audit: ChargeAudit = {
    deliveredImages: ledger.total,
    chargedCredits: charged,
    doubleCharged,
    underCharged,
    serverTotal: result.guildUsedToday,
    statsImages: result.stats.images ?? 0,
    openReservations: result.openReservations,
    journaled: result.journaled,
    ok: false,
  };
  audit.ok =
    doubleCharged === 0 &&
    underCharged === 0 &&
    audit.serverTotal === ledger.total &&
    audit.statsImages === ledger.total &&
    audit.openReservations === 0 &&
    audit.journaled === 0;
  return audit;
}
