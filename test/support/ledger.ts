import { expect } from 'vitest';
import { Journal } from '../../src/services/generation/journal.js';
import type { Storage } from '../../src/services/storage/storage.js';

const DAY = 24 * 60 * 60_000;

export interface LedgerOptions {
  guildId: string;
  /** Whose journal to read (the bot's INSTANCE_ID); `main` unless the test set another. */
  instanceId?: string;
}

export interface Ledger {
  /** Credits each member has used today. */
  usedToday: Record<string, number>;
  /** Every reservation still open, whatever its expiry: none may be left once its job is over. */
  openReservations: unknown[];
  /** Journaled (unfinished) jobs of this instance. */
  journal: Array<{ id: string; state: string }>;
}

/** What the store says about these members' credits, the open reservations and the journal, now. */
export async function readLedger(storage: Storage, userIds: readonly string[], options: LedgerOptions): Promise<Ledger> {
  const now = Date.now();
  const usedToday: Record<string, number> = {};
  for (const userId of userIds) usedToday[userId] = (await storage.quota.usage(options.guildId, userId, now)).usedToday;
  return {
    usedToday,
    openReservations: await storage.quota.expiredReservations(now + DAY, 100),
    // A new Journal each time: a Journal caches the index it loaded first.
    journal: (await new Journal(storage, options.instanceId ?? 'main').list()).map((entry) => ({ id: entry.id, state: entry.state })),
  };
}

/**
 * Once every job is settled: each member has used exactly the credits expected today, no reservation is left open
 * and the journal is empty.
 */
export async function expectConsistentLedger(
  storage: Storage,
  expectedUsedToday: Record<string, number>,
  options: LedgerOptions,
): Promise<void> {
  const ledger = await readLedger(storage, Object.keys(expectedUsedToday), options);
  expect(ledger, 'the credit ledger').toEqual({ usedToday: expectedUsedToday, openReservations: [], journal: [] });
}
