import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { snowflake } from '../fakes/fake-discord.js';
import { admin, EPHEMERAL, imagine, moderator, preferences, run, serverFixture, type Actor, type Place } from '../support/creative.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { immediateRefusal } from '../support/refusals.js';

const servers = Array.from({ length: 10 }, serverFixture);
let next = 0;
function freshServer() {
  const server = servers[next++];
  if (!server) throw new Error('add more server fixtures');
  const { guildId, general, art } = server.ids;
  const here: Place = { guildId, channelId: general };
  return { guildId, general, art, here, mod: moderator(), member: { userId: snowflake() } satisfies Actor };
}

describe('/preferences, end to end through the real discord.js client', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { DEFAULT_COOLDOWN_SECONDS: '0', DEFAULT_DAILY_CREDITS: '20' },
      discord: { guilds: servers.map((s) => s.spec) },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.segmind.reset());

  it('saves, shows and resets a member’s preferences, privately and per server', async () => {
    const s = freshServer();
    const other = freshServer();
    await admin(h, s.here, s.mod, 'styles add', { name: 'anime', template: '{prompt}, anime key visual, cel shading', aspect_ratio: '2:3' });

    expect(await preferences(h, s.here, s.member, 'view')).toBe(
      'You have no preferences in this server (save some with `/preferences set`).\n**`/imagine` with only a prompt, here, now:** no style · 1:1 · guidance 3.5 · 25 steps · 1 image · webp quality 80 · public',
    );
    expect(await preferences(h, s.here, s.member, 'set', { samples: 2, style: 'ANIME' })).toBe(
      '✅ Saved `samples` **2**, `style` `anime`. `/imagine` uses them when you leave those options out.',
    );
    expect(await preferences(h, s.here, s.member, 'set', { guidance: 4.5 })).toBe(
      '✅ Saved `guidance` **4.5**. `/imagine` uses them when you leave those options out.',
    );
    expect(await preferences(h, s.here, s.member, 'view')).toBe(
      [
        '**Your preferences in this server**',
        '• `guidance`: **4.5**',
        '• `samples`: **2**',
        '• `style`: `anime`',
        '**`/imagine` with only a prompt, here, now:** style `anime` (your preference) · 2:3 · guidance 4.5 · 25 steps · 2 images · webp quality 80 · public',
      ].join('\n'),
    );
    // Another server knows nothing of them.
    expect(await preferences(h, other.here, s.member, 'view')).toContain('You have no preferences in this server');

    const { bodies } = await imagine(h, s.here, s.member, { prompt: 'a fox' });
    expect(bodies.map((b) => [b.prompt, b.guidance, b.aspect_ratio])).toEqual([
      ['a fox, anime key visual, cel shading', 4.5, '2:3'],
      ['a fox, anime key visual, cel shading', 4.5, '2:3'],
    ]);

    expect(await preferences(h, s.here, s.member, 'reset')).toBe(
      '✅ Cleared your preferences in this server: `/imagine` uses the server’s styles and the bot’s defaults again.',
    );
    expect(await preferences(h, s.here, s.member, 'reset')).toBe('You had no preferences in this server.');
    expect((await imagine(h, s.here, s.member, { prompt: 'a fox' })).bodies).toMatchObject([{ prompt: 'a fox', guidance: 3.5, samples: 1 }]);
    await expectConsistentLedger(h.storage, { [s.member.userId]: 3 }, { guildId: s.guildId });
  });

  it('refuses a set with nothing to save, an unknown style, and private where the server does not allow it, saving nothing', async () => {
    const s = freshServer();
    const empty = await run(h, s.here, s.member, 'preferences set');
    expect(empty).toMatchObject({ callbackType: 4, flags: EPHEMERAL });
    expect(empty.content).toBe(
      '❌ Give at least one preference to save: `aspect_ratio`, `guidance`, `steps`, `samples`, `output_format`, `output_quality`, `style`, `private`.',
    );
    expect(await preferences(h, s.here, s.member, 'set', { style: 'vaporwave', samples: 2 })).toBe(
      '❌ This server has no style named `vaporwave`. Pick one from the suggestions, or `none`. Nothing was saved.',
    );
    expect(await preferences(h, s.here, s.member, 'set', { private: true })).toBe(
      '❌ Private results are not allowed in this server: its moderators decide (`/imagine-admin settings set allow_private`). Nothing was saved.',
    );
    expect(await preferences(h, s.here, s.member, 'view')).toContain('You have no preferences in this server');
    await admin(h, s.here, s.mod, 'settings set', { allow_private: true });
    expect(await preferences(h, s.here, s.member, 'set', { private: true })).toBe(
      '✅ Saved `private` yes. `/imagine` uses them when you leave those options out.',
    );
    await expectConsistentLedger(h.storage, { [s.member.userId]: 0 }, { guildId: s.guildId });
  });

  it('cuts preferred samples and steps to the server’s limits, saying so when saved, when viewed and in the result', async () => {
    const s = freshServer();
    await admin(h, s.here, s.mod, 'settings set', { max_samples: 2, max_steps: 30 });
    expect(await preferences(h, s.here, s.member, 'set', { samples: 4, steps: 40 })).toBe(
      [
        '✅ Saved `steps` **40**, `samples` **4**. `/imagine` uses them when you leave those options out.',
        'ℹ️ This server allows at most 2 images a request: your `samples` 4 will be cut to 2.',
        'ℹ️ This server allows at most 30 steps: your `steps` 40 will be cut to 30.',
      ].join('\n'),
    );
    expect(await preferences(h, s.here, s.member, 'view')).toContain('· 1:1 · guidance 3.5 · 30 steps · 2 images ·');

    const { bodies, message } = await imagine(h, s.here, s.member, { prompt: 'a heron' });
    expect(bodies.map((b) => [b.samples, b.steps])).toEqual([
      [1, 30],
      [1, 30],
    ]);
    expect(message.content).toContain("ℹ️ `samples` 4 (your preference or the style) is over this server's limit: 2 images made.");
    expect(message.content).toContain("ℹ️ `steps` 40 (your preference or the style) is over this server's limit: 30 used.");
    await expectConsistentLedger(h.storage, { [s.member.userId]: 2 }, { guildId: s.guildId });
  });

  it('makes a private preference’s deferral private, and refuses it privately and for free where the server stopped allowing it', async () => {
    const s = freshServer();
    await admin(h, s.here, s.mod, 'settings set', { allow_private: true });
    await preferences(h, s.here, s.member, 'set', { private: true });

    const allowed = sendImagine(h.discord, { prompt: 'a moth' }, { ...s.here, ...s.member });
    expect((await allowed.waitForCallback()).json).toMatchObject({ type: 5, data: { flags: EPHEMERAL } });
    await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === allowed.id), 'the credits to be settled');

    await admin(h, s.here, s.mod, 'settings set', { allow_private: false });
    expect(await preferences(h, s.here, s.member, 'view')).toContain(
      '• `private`: yes — ⚠️ not allowed in this server now: `/imagine` is refused (free) until you set `private:false` or type `private:false`',
    );
    const refused = sendImagine(h.discord, { prompt: 'a moth' }, { ...s.here, ...s.member });
    expect((await refused.waitForCallback()).json).toMatchObject({ type: 5, data: { flags: EPHEMERAL } });
    const answer = await refused.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    expect(messageOf(answer.json).content).toBe(
      "❌ Private results are not allowed in this server (your `private` option or preference). Its moderators decide: `/imagine-admin settings set allow_private`. Nothing was charged.",
    );
    // Typed, the option wins over the preference: public, and delivered.
    const typed = await imagine(h, s.here, s.member, { prompt: 'a moth', private: false });
    expect((typed.sent.callback()!.json as { data?: { flags?: number } }).data?.flags ?? 0).toBe(0);
    expect(h.segmind.requests).toHaveLength(2);
    await expectConsistentLedger(h.storage, { [s.member.userId]: 2 }, { guildId: s.guildId });
  });

  it('refuses at once, privately and for free, when storage does not give the preferences within a second before the deferral', async () => {
    const s = freshServer();
    const kv = h.storage.kv;
    const get = kv.get.bind(kv);
    let answer!: () => void;
    const stalled = new Promise<undefined>((resolve) => (answer = () => resolve(undefined)));
    // Storage that does not answer for this member's preferences (a stalled connection) until the test lets it.
    kv.get = ((key: string, ...rest: unknown[]) =>
      key === `prefs:${s.guildId}:${s.member.userId}` ? stalled : (get as (...args: unknown[]) => unknown)(key, ...rest)) as typeof kv.get;
    try {
      const sent = sendImagine(h.discord, { prompt: 'a moth' }, { ...s.here, ...s.member });
      expect(await immediateRefusal(sent)).toBe(
        '❌ The bot is having trouble on its side and cannot take requests right now. Nothing was charged — try again in a minute.',
      );
      // Typed, `private` needs nothing before the deferral: the preferences are read after it, however long that takes.
      const typed = sendImagine(h.discord, { prompt: 'a moth', private: false }, { ...s.here, ...s.member });
      expect((await typed.waitForCallback()).json).toMatchObject({ type: 5 });
      expect(h.segmind.requests).toEqual([]);
      answer();
      await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === typed.id), 'the credits to be settled');
    } finally {
      kv.get = get;
    }
    expect(h.segmind.requests).toHaveLength(1);
    await expectConsistentLedger(h.storage, { [s.member.userId]: 1 }, { guildId: s.guildId });
  });

  it('leaves out a preferred style that was removed, with a note in the result, and says so in view', async () => {
    const s = freshServer();
    await admin(h, s.here, s.mod, 'styles add', { name: 'noir', template: 'film noir, {prompt}' });
    await admin(h, s.here, s.mod, 'styles add', { name: 'house', template: 'house style, {prompt}' });
    await admin(h, s.here, s.mod, 'styles default', { style: 'house' });
    await preferences(h, s.here, s.member, 'set', { style: 'noir' });
    await admin(h, s.here, s.mod, 'styles remove', { name: 'noir' });

    expect(await preferences(h, s.here, s.member, 'view')).toContain(
      "• `style`: `noir` — ⚠️ no longer exists in this server: ignored\n**`/imagine` with only a prompt, here, now:** style `house` (the server's default)",
    );
    const { bodies, message } = await imagine(h, s.here, s.member, { prompt: 'a cat' });
    expect(bodies[0]!.prompt).toBe('house style, a cat');
    expect(message.content).toContain('ℹ️ Your preferred style `noir` no longer exists in this server, so it was left out (`/preferences set style` to pick another).');
    await expectConsistentLedger(h.storage, { [s.member.userId]: 1 }, { guildId: s.guildId });
  });
});
