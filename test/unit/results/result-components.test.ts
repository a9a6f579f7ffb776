import { describe, expect, it } from 'vitest';
import { parseResultCustomId, parseShareCustomId, resultComponents, resultCustomId } from '../../../src/services/results/result-components.js';

describe('result controls', () => {
  it('round-trips custom ids and keeps them under Discord’s 100 characters', () => {
    const id = resultCustomId('modal', '1234567890123456789', 's4294967295');
    expect(id.length).toBeLessThanOrEqual(100);
    expect(parseResultCustomId(id)).toEqual({ action: 'modal', id: '1234567890123456789', extra: 's4294967295' });
    expect(parseResultCustomId(resultCustomId('reroll', '42'))).toEqual({ action: 'reroll', id: '42' });
  });

  it.each(['garbage', 'res:reroll:abc', 'res:nope:123', 'res:reroll:1:2:3', 'res:reroll:', `res:reroll:${'9'.repeat(30)}`])(
    'rejects the forged id %j',
    (customId) => {
      expect(parseResultCustomId(customId)).toBeUndefined();
    },
  );

  it('puts Re-roll, Remix, Details, Delete and Report in one row of five buttons, each with its own short id', () => {
    const [row] = resultComponents('1234567890123456789', [{ index: 0, seed: 5 }]);
    const buttons = row!.components as Array<{ type: number; label: string; emoji: { name: string }; custom_id: string }>;
    expect(buttons.map((b) => [b.type, b.emoji.name, b.label, b.custom_id])).toEqual([
      [2, '🔁', 'Re-roll', 'res:reroll:1234567890123456789'],
      [2, '✏️', 'Remix', 'res:remix:1234567890123456789'],
      [2, '🔍', 'Details', 'res:details:1234567890123456789'],
      [2, '🗑️', 'Delete', 'res:delete:1234567890123456789'],
      [2, '🚩', 'Report', 'res:report:1234567890123456789'],
    ]);
    expect(parseResultCustomId(buttons[4]!.custom_id)).toEqual({ action: 'report', id: '1234567890123456789' });
    // with several images the buttons stay in their row of five and the menu gets a row of its own
    const rows = resultComponents('7', [
      { index: 0, seed: 5 },
      { index: 1, seed: 6 },
    ]);
    expect(rows.map((r) => r.components.length)).toEqual([5, 1]);
  });

  it('adds the per-image menu only for several images: one remix choice per image, no reproduce choice', () => {
    expect(resultComponents('1', [{ index: 0, seed: 5 }])).toHaveLength(1);
    const rows = resultComponents('1', [
      { index: 0, seed: 5 },
      { index: 2, seed: 7 },
    ]);
    expect(rows).toHaveLength(2);
    const menu = rows[1]!.components[0] as { options: Array<{ value: string; label: string }> };
    expect(menu.options.map((o) => o.value)).toEqual(['remix-0', 'remix-2']);
    expect(menu.options[1]!.label).toBe('✏️ Remix image 2 (seed 7)');
    expect(JSON.stringify(rows)).not.toMatch(/repro/i);
  });

  it('gives a private result Re-roll, Remix and Details only, the ones that make images marked private', () => {
    const rows = resultComponents('77', [
      { index: 0, seed: 5 },
      { index: 1, seed: 6 },
    ], { private: true, share: true });
    const ids = rows.flatMap((row) => row.components.map((c) => (c as { custom_id: string }).custom_id));
    expect(ids).toEqual(['res:reroll:77:p', 'res:remix:77:p', 'res:details:77', 'res:pick:77:p']);
    expect(parseResultCustomId('res:reroll:77:p')).toEqual({ action: 'reroll', id: '77', extra: 'p' });
  });

  it('offers ⭐ Share on a row of its own where the server has a gallery', () => {
    const rows = resultComponents('78', [{ index: 0, seed: 5 }], { share: true });
    expect(rows).toHaveLength(2);
    const share = rows[1]!.components[0] as { custom_id: string; label: string; emoji: { name: string } };
    expect([share.emoji.name, share.label, share.custom_id]).toEqual(['⭐', 'Share', 'share:78']);
    expect(parseShareCustomId(share.custom_id)).toBe('78');
    expect(parseShareCustomId('share:78:x')).toBeUndefined();
    expect(resultComponents('78', [{ index: 0, seed: 5 }])).toHaveLength(1);
  });
});
