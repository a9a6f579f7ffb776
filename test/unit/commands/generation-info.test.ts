import { describe, expect, it } from 'vitest';
import {
  definition,
  describeResult,
  moderatorCustomId,
  parseModeratorCustomId,
  resultIdOf,
} from '../../../src/commands/generation-info.js';
import { resolveStored, storedChoices } from '../../../src/commands/imagine-admin/options.js';
import { splitPhrases } from '../../../src/commands/imagine-admin/words.js';
import { UserFacingError } from '../../../src/errors.js';
import { DEFAULTS } from '../../../src/services/segmind/flux-params.js';
import type { ResultRecord } from '../../../src/services/results/result-store.js';

const RESULT_ID = '1234567890123456789';
const MESSAGE_ID = '1234567890123456790';

function record(prompt: string, seeds = [42]): ResultRecord {
  return {
    v: 1,
    id: RESULT_ID,
    guildId: '111111111111111111',
    channelId: '222222222222222222',
    ownerId: '333333333333333333',
    params: { ...DEFAULTS, prompt, seed: seeds[0]!, samples: seeds.length },
    images: seeds.map((seed, index) => ({ index, seed })),
    createdAt: 1_700_000_000_000,
  };
}

describe('Generation info', () => {
  it('is a message command named exactly "Generation info", for servers', () => {
    expect(definition).toMatchObject({ type: 3, name: 'Generation info', contexts: [0], integration_types: [0] });
  });

  it('reads moderator buttons back strictly: anything forged or malformed is refused', () => {
    const remove = moderatorCustomId({ action: 'delete', resultId: RESULT_ID, messageId: MESSAGE_ID });
    const block = moderatorCustomId({ action: 'block', resultId: RESULT_ID });
    expect(remove.length).toBeLessThanOrEqual(100);
    expect(parseModeratorCustomId(remove)).toEqual({ action: 'delete', resultId: RESULT_ID, messageId: MESSAGE_ID });
    expect(parseModeratorCustomId(block)).toEqual({ action: 'block', resultId: RESULT_ID });
    for (const forged of [
      `mod:delete:${RESULT_ID}`, // no message
      `mod:block:${RESULT_ID}:${MESSAGE_ID}`, // block takes no message
      `mod:ban:${RESULT_ID}`,
      `mod:delete:abc:${MESSAGE_ID}`,
      `mod:delete:${RESULT_ID}:${MESSAGE_ID}:x`,
      `res:delete:${RESULT_ID}`,
      ` mod:block:${RESULT_ID}`,
    ])
      expect(parseModeratorCustomId(forged), forged).toBeUndefined();
  });

  it('finds the result id in a message’s components, nested rows included, and nothing in other messages', () => {
    const row = (customId: string) => ({ components: [{ customId: 'x' }, { customId }] });
    expect(resultIdOf({ components: [row(`res:details:${RESULT_ID}`)] } as never)).toBe(RESULT_ID);
    expect(resultIdOf({ components: [{ components: [row(`res:pick:${RESULT_ID}`)] }] } as never)).toBe(RESULT_ID);
    expect(resultIdOf({ components: [row('cancel:123'), row('res:nope:1')] } as never)).toBeUndefined();
    expect(resultIdOf({ components: [] })).toBeUndefined();
  });

  it('describes the longest prompt with four seeds within 2000 characters, on one escaped line', () => {
    const text = describeResult(record(`${'*bold* '.repeat(285)}end`, [1, 2, 3, 4294967295]), true);
    expect(text.length).toBeLessThanOrEqual(2000);
    expect(text).toContain('\\*bold\\*');
    expect(text).toContain('Seeds: `1`, `2`, `3`, `4294967295`');
    expect(text).toContain('⛔ <@333333333333333333> is blocked');
    expect(text.split('\n')[2]).toMatch(/^> .*…$/);
  });

  it('names the owner and the time, and every setting', () => {
    const format: string = DEFAULTS.output_format;
    const text = describeResult(record('a lighthouse'));
    expect(text).toBe(
      [
        '**Generation info**',
        'Made by <@333333333333333333> in <#222222222222222222> · <t:1700000000:f> (<t:1700000000:R>)',
        '> a lighthouse',
        'Seed: `42`',
        `Steps: ${DEFAULTS.steps} · Guidance: ${DEFAULTS.guidance} · Aspect ratio: ${DEFAULTS.aspect_ratio} · Format: ${
          format === 'png' ? 'png' : `${DEFAULTS.output_format} (quality ${DEFAULTS.output_quality})`
        }`,
      ].join('\n'),
    );
  });
});

describe('/imagine-admin words add with a comma-separated list', () => {
  it('trims, drops empties and duplicates (case-insensitively), and says why each bad phrase is skipped', () => {
    const long = 'x'.repeat(101);
    expect(splitPhrases(' gore ,, Gore, blood* ,***, a\tb, ' + long)).toEqual({
      phrases: ['gore', 'blood*'],
      skipped: [
        { phrase: '***', why: 'no letters or digits to match' },
        { phrase: 'a\tb', why: 'contains control characters (line breaks, tabs…)' },
        { phrase: `${'x'.repeat(39)}…`, why: 'is longer than 100 characters' },
      ],
    });
  });
});

describe('stored ids that Discord may no longer know', () => {
  const names: Record<string, string> = { '100000000000000001': 'general' };
  const nameOf = (id: string) => names[id];
  const stored = ['100000000000000001', '100000000000000002'];

  it('suggests live ones by name and deleted ones by id, filtered by what was typed', () => {
    expect(storedChoices(stored, nameOf, '#', '')).toEqual([
      { name: '#general', value: '100000000000000001' },
      { name: '100000000000000002 (deleted)', value: '100000000000000002' },
    ]);
    expect(storedChoices(stored, nameOf, '#', '#GEN')).toEqual([{ name: '#general', value: '100000000000000001' }]);
    expect(storedChoices(stored, nameOf, '#', '0002')).toEqual([{ name: '100000000000000002 (deleted)', value: '100000000000000002' }]);
    expect(storedChoices(Array.from({ length: 40 }, (_, i) => String(100000000000000000 + i)), nameOf, '#', '')).toHaveLength(25);
  });

  it('takes an id, a mention or a stored name, and refuses anything else', () => {
    expect(resolveStored('100000000000000002', stored, nameOf, 'channel')).toBe('100000000000000002');
    expect(resolveStored('<#100000000000000002>', stored, nameOf, 'channel')).toBe('100000000000000002');
    expect(resolveStored('<@&100000000000000002>', stored, nameOf, 'role')).toBe('100000000000000002');
    expect(resolveStored('#General', stored, nameOf, 'channel')).toBe('100000000000000001');
    expect(() => resolveStored('art', stored, nameOf, 'channel')).toThrow(UserFacingError);
    expect(() => resolveStored('art', stored, nameOf, 'channel')).toThrow('Pick the channel from the suggestions, or give its id.');
  });
});
