import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { snowflake } from '../fakes/fake-discord.js';
import { admin, imagine, moderator, postsIn, preferences, serverFixture, suggestions, type Actor, type Place } from '../support/creative.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';

const ANIME = { name: 'anime', template: '{prompt}, anime key visual, cel shading', aspect_ratio: '2:3' } as const;

const servers = Array.from({ length: 12 }, serverFixture);
let next = 0;
/** Each test gets a server of its own (with its own moderator), so styles and settings never leak between tests. */
function freshServer() {
  const server = servers[next++];
  if (!server) throw new Error('add more server fixtures');
  const { guildId, general, art, modLog } = server.ids;
  const here: Place = { guildId, channelId: general };
  return { guildId, general, art, modLog, here, mod: moderator(), member: { userId: snowflake() } satisfies Actor };
}

describe('server styles, end to end through the real discord.js client', () => {
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

  it('adds, updates, lists, sets as default and removes styles, each change audited and posted to the log channel', async () => {
    const s = freshServer();
    await admin(h, s.here, s.mod, 'settings set', { log_channel: s.modLog });

    expect(await admin(h, s.here, s.mod, 'styles add', { ...ANIME, description: 'Anime key visual' })).toBe(
      '✅ Added the style `anime`: `{prompt}, anime key visual, cel shading` · 2:3.\nMembers use it with `/imagine prompt:… style:anime`.',
    );
    expect(await admin(h, s.here, s.mod, 'styles add', { name: 'Anime', template: '{prompt}, anime', steps: 30 })).toBe(
      '✅ Updated the style `Anime` (it existed): `{prompt}, anime` · 30 steps.\nMembers use it with `/imagine prompt:… style:Anime`.',
    );
    expect(await admin(h, s.here, s.mod, 'styles add', { name: 'watercolor', template: 'soft watercolor painting' })).toContain(
      "Its template has no `{prompt}`: the member's prompt is appended after a comma.",
    );
    expect(await admin(h, s.here, s.mod, 'styles add', { name: 'None', template: '{prompt}' })).toBe(
      '❌ Some options are not valid:\n• `name`: `none` is reserved: it means no style',
    );

    expect(await admin(h, s.here, s.mod, 'styles default', { style: 'anime' })).toBe(
      "✅ Set the server's default style → `Anime`. It applies to every `/imagine` without a style typed or preferred, except in channels with a default of their own. Members opt out with `style:none`.",
    );
    expect(await admin(h, s.here, s.mod, 'styles default', { style: 'watercolor', channel: s.art })).toBe(
      `✅ Set the default style of <#${s.art}> → \`watercolor\`. It applies to every \`/imagine\` in <#${s.art}> (and its threads) without a style typed or preferred. Members opt out with \`style:none\`.`,
    );
    expect(await admin(h, s.here, s.mod, 'styles default', { style: 'vaporwave' })).toBe(
      '❌ There is no style named `vaporwave`. Add it first with `/imagine-admin styles add`.',
    );
    expect(await admin(h, s.here, s.mod, 'styles list')).toBe(
      [
        '**Styles** (2/100) · server default: `Anime` · 1 channel with a default of its own',
        '• **Anime** ⭐ server default\n  `{prompt}, anime` · 30 steps',
        `• **watercolor** ⭐ default in <#${s.art}>\n  \`soft watercolor painting\``,
      ].join('\n'),
    );

    expect(await admin(h, s.here, s.mod, 'styles remove', { name: 'WATERCOLOR' })).toBe(
      `✅ Removed the style \`watercolor\`. It was the default of <#${s.art}>: cleared.`,
    );
    expect(await admin(h, s.here, s.mod, 'styles default')).toBe("✅ Cleared the server's default style (was `Anime`).");
    expect(await admin(h, s.here, s.mod, 'styles default')).toBe("❌ The server's default style is not set.");
    expect(await admin(h, s.here, s.mod, 'styles remove', { name: 'watercolor' })).toBe('❌ There is no style named `watercolor`.');
    expect(await admin(h, s.here, s.mod, 'styles list')).toBe(
      '**Styles** (1/100) · server default: none · 0 channels with a default of its own\n• **Anime**\n  `{prompt}, anime` · 30 steps',
    );

    const by = `🛠️ <@${s.mod.userId}>`;
    const expected = [
      `${by} added a style: \`anime\`: \`{prompt}, anime key visual, cel shading\` · 2:3`,
      `${by} updated a style: \`Anime\`: \`{prompt}, anime\` · 30 steps`,
      `${by} added a style: \`watercolor\`: \`soft watercolor painting\``,
      `${by} set a default style: the server's default style → \`Anime\``,
      `${by} set a default style: the default style of <#${s.art}> → \`watercolor\``,
      `${by} removed a style: \`watercolor\` It was the default of <#${s.art}>: cleared.`,
      `${by} cleared a default style: the server's default style (was \`Anime\`)`,
    ];
    await eventually(() => postsIn(h, s.modLog).length >= expected.length + 2, 'the log channel posts');
    expect(postsIn(h, s.modLog).slice(2)).toEqual(expected);
    const audit = await admin(h, s.here, s.mod, 'audit');
    expect(audit).toContain('added a style: `anime`');
    expect(audit).toContain(`cleared a default style: the server's default style (was \`Anime\`)`);
    // Refusals changed nothing and were not audited.
    expect(audit).not.toContain('vaporwave');
    await expectConsistentLedger(h.storage, {}, { guildId: s.guildId });
  });

  it('sends Segmind the expanded prompt and the style’s parameters, and names the style under the member’s prompt', async () => {
    const s = freshServer();
    await admin(h, s.here, s.mod, 'styles add', { ...ANIME, guidance: 5, steps: 30 });

    const { bodies, message } = await imagine(h, s.here, s.member, { prompt: 'a fox', style: 'anime', seed: 7 });
    expect(bodies).toEqual([
      {
        prompt: 'a fox, anime key visual, cel shading',
        aspect_ratio: '2:3',
        guidance: 5,
        steps: 30,
        samples: 1,
        seed: 7,
        output_format: 'webp',
        output_quality: 80,
        prompt_strength: 0.8,
      },
    ]);
    expect(message.content).toMatch(new RegExp(`^\\*\\*a fox\\*\\* — <@${s.member.userId}>\nseed 7 · 2:3 · 30 steps · guidance 5 · `));
    expect((message.embeds?.[0] as { footer?: { text: string } }).footer?.text).toMatch(/ · style: anime$/);
    await expectConsistentLedger(h.storage, { [s.member.userId]: 1 }, { guildId: s.guildId });
  });

  it('suggests none and the server’s styles matching what is typed, and sees a new style at once', async () => {
    const s = freshServer();
    expect(await suggestions(h, s.here, s.member, 'imagine', 'style', '', { prompt: 'a fox' })).toEqual([
      { name: "none — no style, not even the channel's default", value: 'none' },
    ]);
    await admin(h, s.here, s.mod, 'styles add', { ...ANIME, description: 'Anime key visual' });
    await admin(h, s.here, s.mod, 'styles add', { name: 'noir', template: 'film noir, {prompt}' });

    expect(await suggestions(h, s.here, s.member, 'imagine', 'style', '', { prompt: 'a fox' })).toEqual([
      { name: "none — no style, not even the channel's default", value: 'none' },
      { name: 'anime — Anime key visual', value: 'anime' },
      { name: 'noir', value: 'noir' },
    ]);
    expect(await suggestions(h, s.here, s.member, 'imagine', 'style', 'AN')).toEqual([{ name: 'anime — Anime key visual', value: 'anime' }]);
    expect(await suggestions(h, s.here, s.member, 'preferences set', 'style', 'no')).toEqual([
      { name: "none — no style, not even the channel's default", value: 'none' },
      { name: 'noir', value: 'noir' },
    ]);
    // Moderators pick from the stored styles (none is not one); members get nothing from /imagine-admin.
    expect(await suggestions(h, s.here, s.mod, 'imagine-admin styles remove', 'name', '')).toEqual([
      { name: 'anime — Anime key visual', value: 'anime' },
      { name: 'noir', value: 'noir' },
    ]);
    expect(await suggestions(h, s.here, s.member, 'imagine-admin styles remove', 'name', '')).toEqual([]);
    expect(await suggestions(h, s.here, s.mod, 'imagine-admin styles add', 'aspect_ratio', '2', { name: 'x' })).toEqual([
      { name: '21:9', value: '21:9' },
      { name: '2:3', value: '2:3' },
    ]);
    await expectConsistentLedger(h.storage, {}, { guildId: s.guildId });
  });

  it('applies the typed style over the preference over the channel’s default over the server’s, and none opts out', async () => {
    const s = freshServer();
    for (const [name, template] of [['server', 'S {prompt}'], ['channel', 'C {prompt}'], ['preferred', 'P {prompt}'], ['typed', 'T {prompt}']])
      await admin(h, s.here, s.mod, 'styles add', { name: name!, template: template! });
    await admin(h, s.here, s.mod, 'styles default', { style: 'server' });
    await admin(h, s.here, s.mod, 'styles default', { style: 'channel', channel: s.art });
    const art: Place = { guildId: s.guildId, channelId: s.art };
    const thread: Place = { guildId: s.guildId, channelId: h.discord.addThread({ parentId: s.art }) };
    const prompt = async (place: Place, options: Record<string, string | number | boolean> = {}) =>
      (await imagine(h, place, s.member, { prompt: 'fox', ...options })).bodies[0]!.prompt;

    expect(await prompt(s.here)).toBe('S fox');
    expect(await prompt(art)).toBe('C fox');
    expect(await prompt(thread)).toBe('C fox');
    await preferences(h, s.here, s.member, 'set', { style: 'preferred' });
    expect(await prompt(art)).toBe('P fox');
    expect(await prompt(art, { style: 'typed' })).toBe('T fox');
    expect(await prompt(art, { style: 'none' })).toBe('fox');
    await preferences(h, s.here, s.member, 'set', { style: 'none' });
    expect(await prompt(art)).toBe('fox');
    await expectConsistentLedger(h.storage, { [s.member.userId]: 7 }, { guildId: s.guildId });
  });

  it('takes each parameter from the option typed, else the preference, else the style, else the bot’s defaults', async () => {
    const s = freshServer();
    await admin(h, s.here, s.mod, 'styles add', { name: 'wide', template: '{prompt}', aspect_ratio: '16:9', guidance: 6, steps: 20 });
    await admin(h, s.here, s.mod, 'styles default', { style: 'wide' });
    const params = async (options: Record<string, string | number | boolean> = {}) => {
      const { prompt: _prompt, seed: _seed, ...rest } = (await imagine(h, s.here, s.member, { prompt: 'fox', ...options })).bodies[0]!;
      return rest;
    };
    const defaults = { samples: 1, output_format: 'webp', output_quality: 80, prompt_strength: 0.8 };

    expect(await params()).toEqual({ ...defaults, aspect_ratio: '16:9', guidance: 6, steps: 20 });
    await preferences(h, s.here, s.member, 'set', { aspect_ratio: '1:1', steps: 12, output_format: 'png' });
    expect(await params()).toEqual({ ...defaults, aspect_ratio: '1:1', guidance: 6, steps: 12, output_format: 'png' });
    expect(await params({ aspect_ratio: '9:16', steps: 40, guidance: 1 })).toEqual({ ...defaults, aspect_ratio: '9:16', guidance: 1, steps: 40, output_format: 'png' });
    expect(await params({ style: 'none' })).toEqual({ ...defaults, aspect_ratio: '1:1', guidance: 3.5, steps: 12, output_format: 'png' });
    await expectConsistentLedger(h.storage, { [s.member.userId]: 4 }, { guildId: s.guildId });
  });

  it('refuses privately, for free, a prompt whose expansion is over 2000 characters, and a style the server does not have', async () => {
    const s = freshServer();
    await admin(h, s.here, s.mod, 'styles add', ANIME);

    const long = sendImagine(h.discord, { prompt: 'a'.repeat(1990), style: 'anime' }, { ...s.here, ...s.member });
    expect(await refusalAfterDeferral(long)).toBe(
      '❌ With the style `anime` your prompt becomes 2021 characters, over the 2000 the image service takes. Shorten your prompt, or use `style:none`. Nothing was charged.',
    );
    const unknown = sendImagine(h.discord, { prompt: 'a fox', style: 'vaporwave' }, { ...s.here, ...s.member });
    expect(await refusalAfterDeferral(unknown)).toBe(
      '❌ This server has no style named `vaporwave`. Pick one from the suggestions (or `none` for no style); moderators see them all with `/imagine-admin styles list`. Nothing was charged.',
    );
    expect(h.segmind.requests).toEqual([]);
    await expectConsistentLedger(h.storage, { [s.member.userId]: 0 }, { guildId: s.guildId });
  });

  it('holds templates to the word lists: a banned word refused, an NSFW word only where age-restricted channels allow it', async () => {
    const s = freshServer();
    await admin(h, s.here, s.mod, 'words add', { phrase: 'gore', list: 'banned' });
    expect(await admin(h, s.here, s.mod, 'styles add', { name: 'grim', template: '{prompt}, gore' })).toBe(
      '❌ The template contains the banned word `gore`: every prompt with this style would be refused. Nothing was saved.',
    );
    expect(await admin(h, s.here, s.mod, 'styles add', { name: 'spicy', template: '{prompt}, nude' })).toBe(
      '❌ The template contains the NSFW word `nude`, and this server refuses NSFW prompts everywhere (`nsfw_policy` off). Nothing was saved.',
    );
    await admin(h, s.here, s.mod, 'settings set', { nsfw_policy: 'age_restricted' });
    expect(await admin(h, s.here, s.mod, 'styles add', { name: 'spicy', template: '{prompt}, nude' })).toContain(
      '⚠️ Its template contains the NSFW word `nude`: it works only in age-restricted channels.',
    );
    expect(await admin(h, s.here, s.mod, 'styles list')).not.toContain('grim');

    // A word banned after the style was made: the expanded prompt is what the rules see.
    await admin(h, s.here, s.mod, 'styles add', ANIME);
    await admin(h, s.here, s.mod, 'words add', { phrase: 'cel shading', list: 'banned' });
    const refused = sendImagine(h.discord, { prompt: 'a fox', style: 'anime' }, { ...s.here, ...s.member });
    expect(await refusalAfterDeferral(refused)).toBe('❌ Your prompt with the style “anime” contains something this server does not allow (“cel shading”).');
    expect(h.segmind.requests).toEqual([]);
    await expectConsistentLedger(h.storage, { [s.member.userId]: 0 }, { guildId: s.guildId });
  });
});
