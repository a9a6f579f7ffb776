import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/logger.js';
import { openMemoryStorage } from '../../../src/services/storage/local-storage.js';
import type { Storage } from '../../../src/services/storage/storage.js';
import { AuditLog, RESULT_DELETED, auditActionKey } from '../../../src/services/usage/audit-log.js';

const logger = createLogger({ level: 'silent', secrets: [] });
const GUILD = '100000000000000001';
const LOG_CHANNEL = '100000000000000002';

describe('the audit log in the server’s language', () => {
  let storage: Storage | undefined;
  afterEach(async () => {
    await storage?.close();
  });

  function auditWith(locale: 'ja' | 'en-US', posts: string[]): AuditLog {
    storage = openMemoryStorage({ logger, namespace: `audit-${Math.random()}` });
    return new AuditLog(storage, systemClock, (_channel, text) => Promise.resolve(void posts.push(text)), logger, () => Promise.resolve(locale));
  }

  it('keeps the entry in English and posts the bot’s own action in the server’s language', async () => {
    const posts: string[] = [];
    const audit = auditWith('ja', posts);
    await audit.record(GUILD, LOG_CHANNEL, { actorId: '100000000000000003', action: RESULT_DELETED, details: '<@100000000000000004>' });
    expect(posts).toEqual(['🛠️ <@100000000000000003> が結果を削除：<@100000000000000004>']);
    expect(await audit.list(GUILD)).toMatchObject([{ action: 'deleted a result', details: '<@100000000000000004>' }]);
  });

  it('posts in the language its caller gives, and an action it does not know as it is', async () => {
    const posts: string[] = [];
    const audit = auditWith('ja', posts);
    await audit.record(GUILD, LOG_CHANNEL, { actorId: '1', action: 'blocked a member', details: 'x' }, { locale: 'fr', details: () => 'y' });
    await audit.record(GUILD, LOG_CHANNEL, { actorId: '1', action: 'did something new', details: 'z' });
    expect(posts).toEqual(['🛠️ <@1> a bloqué un membre : y', '🛠️ <@1> がdid something new：z']);
    expect(auditActionKey('blocked a member')).toBe('blocked');
  });

  it('reads exactly as before in English', async () => {
    const posts: string[] = [];
    await auditWith('en-US', posts).record(GUILD, LOG_CHANNEL, { actorId: '1', action: 'paused /imagine', details: 'no reason given' });
    expect(posts).toEqual(['🛠️ <@1> paused /imagine: no reason given']);
  });
});
