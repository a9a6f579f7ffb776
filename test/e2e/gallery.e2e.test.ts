/**
 * The community gallery (issue 16): ⭐ Share under a public result posts it to the server's gallery channel, for the
 * member who asked or a moderator, once; the starboard shares a result that enough distinct members starred. Flagged
 * images and private results are never shared. Driven through the real discord.js client and the fakes.
 */
import { ApplicationCommandOptionType, ChannelType, type APIInteractionDataResolved } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { definition as adminDefinition } from '../../src/commands/imagine-admin/index.js';
import { snowflake, type RecordedRequest, type SentInteraction, type SlashCommandOption } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';

const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '100000', DEFAULT_COOLDOWN_SECONDS: '0' };
const MANAGE_SERVER = '32';
const EPHEMERAL = 64;
const NO_GALLERY =
  "❌ This server has no gallery channel. Its moderators turn it on with `/imagine-admin settings set gallery_channel:#channel`.";

interface Actor {
  userId: string;
  permissions?: string;
}
const member = (): Actor => ({ userId: snowflake() });
const moderator = (): Actor => ({ userId: snowflake(), permissions: MANAGE_SERVER });

interface SentRow {
  components: Array<{ type: number; label?: string; custom_id?: string }>;
}

interface Result {
  sent: SentInteraction;
  messageId: string;
  /** The ⭐ Share button's custom_id as the bot put it on the message, if any. */
  share: string | undefined;
  /** The files of the result message: name → the bytes uploaded. */
  files: Map<string, Buffer>;
}

interface GalleryPost {
  content: string;
  allowed_mentions: unknown;
  attachments: Array<{ id: string; filename: string }>;
  files: Array<{ name: string; bytes: Buffer }>;
}

describe('the community gallery', () => {
  let h: Harness | undefined;
  const general = snowflake();
  const gallery = snowflake();
  const other = snowflake();

  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  async function start(): Promise<Harness> {
    h = await startHarness({
      env: NO_LIMITS,
      discord: {
        guilds: [{ channels: [{ id: general, name: 'general' }, { id: gallery, name: 'gallery' }, { id: other, name: 'other' }] }],
      },
    });
    return h;
  }

  async function admin(hh: Harness, command: string, values: Record<string, string | number | boolean>, actor: Actor = moderator()): Promise<string> {
    const path = command.split(' ');
    type Defined = { name: string; type: number; options?: readonly Defined[] };
    let level = adminDefinition.options as readonly Defined[];
    for (const name of path) level = level.find((o) => o.name === name)?.options ?? [];
    const leaf: SlashCommandOption[] = Object.entries(values).map(([name, value]) => {
      const type = level.find((o) => o.name === name)?.type;
      if (type === undefined) throw new Error(`/imagine-admin ${command} has no option ${name}`);
      return { name, type, value };
    });
    let options = leaf;
    for (const [i, name] of [...path].reverse().entries())
      options = [{ name, type: i === 0 ? ApplicationCommandOptionType.Subcommand : ApplicationCommandOptionType.SubcommandGroup, options }];
    const resolved: APIInteractionDataResolved = { channels: {} };
    for (const option of leaf)
      if (option.type === Number(ApplicationCommandOptionType.Channel)) {
        const id = String(option.value);
        resolved.channels![id] = { id, name: 'gallery', type: ChannelType.GuildText, permissions: '0' };
      }
    const sent = hh.discord.sendSlashCommand({ name: 'imagine-admin', ...actor, options, resolved });
    const callback = await sent.waitForCallback();
    const reply =
      (callback.json as { type: number }).type === 4
        ? messageOf(callback.json)
        : messageOf((await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'))).json);
    expect(reply.content ?? '').not.toMatch(/^❌/);
    return reply.content ?? '';
  }

  /** `/imagine` by `actor`, delivered in #general and settled. */
  async function imagine(hh: Harness, options: Record<string, string | number | boolean>, actor: Actor): Promise<Result> {
    const sent = sendImagine(hh.discord, options, { ...actor, channelId: general });
    const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0);
    await eventually(() => hh.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), 'the job to settle');
    const message = sent.originalMessage();
    if (!message) throw new Error('no result message');
    const rows = ((messageOf(edit.json) as { components?: SentRow[] }).components ?? []).flatMap((row) => row.components);
    return {
      sent,
      messageId: message.id,
      share: rows.find((c) => c.label === 'Share')?.custom_id,
      files: new Map(edit.files.map((f) => [f.name, f.bytes])),
    };
  }

  function press(hh: Harness, result: Result, actor: Actor): SentInteraction {
    if (result.share === undefined) throw new Error('the result has no Share button');
    return hh.discord.sendButton({ customId: result.share, messageId: result.messageId, channelId: general, ...actor });
  }

  /** A press is acknowledged privately at once (before storage is read), then answered in that private reply. */
  async function answer(sent: SentInteraction): Promise<string> {
    const callback = await sent.waitForCallback();
    expect(callback.status).toBe(204);
    expect(callback.json).toMatchObject({ type: 5, data: { flags: EPHEMERAL } });
    const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    return messageOf(edit.json).content ?? '';
  }

  const isGalleryPost = (r: RecordedRequest) => r.method === 'POST' && r.path === `/channels/${gallery}/messages` && r.files.length > 0;

  function galleryPosts(hh: Harness): GalleryPost[] {
    return hh.discord.requests.filter(isGalleryPost).map((r) => ({
      ...(r.json as Omit<GalleryPost, 'files'>),
      files: r.files.map((f) => ({ name: f.name, bytes: f.bytes })),
    }));
  }

  /** The link to the n-th gallery post Discord accepted. */
  function galleryLink(hh: Harness, n = 0): string {
    const post = hh.discord.requests.filter((r) => isGalleryPost(r) && r.status === 200)[n];
    return `https://discord.com/channels/${hh.discord.guildId}/${gallery}/${(post?.response as { id: string }).id}`;
  }

  const originalLink = (hh: Harness, result: Result) => `https://discord.com/channels/${hh.discord.guildId}/${general}/${result.messageId}`;

  // -------------------------------------------------------------------------------------------------------------------
  // ⭐ Share

  it("shares the owner's result once: its images, escaped prompt, style, author without a ping and a link to the original", async () => {
    const hh = await start();
    const owner = member();
    await admin(hh, 'settings set', { gallery_channel: gallery });
    await admin(hh, 'styles add', { name: 'Water_colour', template: 'a soft watercolour of {prompt}' });
    const result = await imagine(hh, { prompt: 'a *bold* lighthouse', seed: 10, samples: 2, style: 'Water_colour' }, owner);
    expect(hh.segmind.requests[0]?.body).toMatchObject({ prompt: 'a soft watercolour of a *bold* lighthouse' });

    const shared = await answer(press(hh, result, owner));
    expect(shared).toBe(`⭐ Shared to <#${gallery}>: ${galleryLink(hh)}`);
    const [post, ...more] = galleryPosts(hh);
    expect(more).toEqual([]);
    expect(post?.content).toBe(
      `⭐ **a \\*bold\\* lighthouse** — <@${owner.userId}>\nStyle: **Water\\_colour** · [Original](${originalLink(hh, result)}) · shared by <@${owner.userId}>`,
    );
    expect(post?.allowed_mentions).toEqual({ parse: [] });
    // The very images of the result, downloaded from the URLs Discord gave for them.
    expect(post?.files.map((f) => f.name)).toEqual([...result.files.keys()]);
    for (const file of post?.files ?? []) expect(file.bytes.equals(result.files.get(file.name)!)).toBe(true);
    expect(post?.attachments).toEqual(post?.files.map((f, i) => ({ id: String(i), filename: f.name })));
    expect(hh.discord.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/attachments/')).map((r) => r.status)).toEqual([200, 200]);
    expect(hh.discord.protocolViolations()).toEqual([]);

    // Once only: a second press answers with the first post's link, and nothing more is posted.
    expect(await answer(press(hh, result, owner))).toBe(`⭐ This result is already in the gallery: ${galleryLink(hh)}`);
    expect(galleryPosts(hh)).toHaveLength(1);
    await expectConsistentLedger(hh.storage, { [owner.userId]: 2 }, { guildId: hh.discord.guildId });
  });

  it('lets a moderator share, refuses anyone else privately, and posts once for two presses at once', async () => {
    const hh = await start();
    const owner = member();
    const someone = member();
    const mod = moderator();
    await admin(hh, 'settings set', { gallery_channel: gallery });
    const result = await imagine(hh, { prompt: 'a quiet harbour', seed: 20 }, owner);

    expect(await answer(press(hh, result, someone))).toBe('❌ Only the member who asked for these images, or a moderator, can share them to the gallery.');
    expect(galleryPosts(hh)).toEqual([]);

    const answers = await Promise.all([press(hh, result, mod), press(hh, result, owner)].map(answer));
    expect(galleryPosts(hh)).toHaveLength(1);
    const link = galleryLink(hh);
    const shared = `⭐ Shared to <#${gallery}>: ${link}`;
    expect(answers).toContain(shared);
    const second = answers.find((a) => a !== shared);
    expect([`⭐ This result is already in the gallery: ${link}`, '⭐ This result is being shared to the gallery right now.']).toContain(second);
    expect(galleryPosts(hh)[0]?.content).toMatch(/ · shared by <@\d+>$/);
    await expectConsistentLedger(hh.storage, { [owner.userId]: 1, [someone.userId]: 0, [mod.userId]: 0 }, { guildId: hh.discord.guildId });
  });

  it('never shares flagged images: spoilered ones stay out of the post, and a result all flagged has no Share button', async () => {
    const hh = await start();
    const owner = member();
    await admin(hh, 'settings set', { gallery_channel: gallery, image_check: 'spoiler' });
    hh.checker.set('flagged', 31);
    const mixed = await imagine(hh, { prompt: 'two lanterns', seed: 30, samples: 2 }, owner);
    expect([...mixed.files.keys()]).toEqual([expect.stringMatching(/^flux-30\./), expect.stringMatching(/^SPOILER_flux-31\./)]);

    expect(await answer(press(hh, mixed, owner))).toBe(`⭐ Shared to <#${gallery}>: ${galleryLink(hh)}`);
    expect(galleryPosts(hh)[0]?.files.map((f) => f.name)).toEqual([expect.stringMatching(/^flux-30\./)]);
    // The flagged image's URL was never even fetched.
    const fetched = hh.discord.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/attachments/')).map((r) => r.path);
    expect(fetched).toEqual([expect.stringMatching(/\/flux-30\.\w+$/)]);

    hh.checker.set('flagged', 40);
    const flagged = await imagine(hh, { prompt: 'one lantern', seed: 40 }, owner);
    expect(flagged.share).toBeUndefined();
    // A forged press on it shares nothing either.
    const forged = hh.discord.sendButton({ customId: `share:${flagged.sent.id}`, messageId: flagged.messageId, channelId: general, ...owner });
    expect(await answer(forged)).toBe('❌ The image check flagged every image of this result: flagged images are never shared.');
    expect(galleryPosts(hh)).toHaveLength(1);
    await expectConsistentLedger(hh.storage, { [owner.userId]: 3 }, { guildId: hh.discord.guildId });
  });

  it('says how moderators set a gallery when the server has none any more, and shares nothing', async () => {
    const hh = await start();
    const owner = member();
    await admin(hh, 'settings set', { gallery_channel: gallery });
    const result = await imagine(hh, { prompt: 'a foggy pier', seed: 50 }, owner);
    await admin(hh, 'settings reset', { setting: 'gallery_channel' });

    expect(await answer(press(hh, result, owner))).toBe(NO_GALLERY);
    expect(galleryPosts(hh)).toEqual([]);
    // Nothing was marked: once a gallery is set again, the same press shares it.
    await admin(hh, 'settings set', { gallery_channel: gallery });
    expect(await answer(press(hh, result, owner))).toBe(`⭐ Shared to <#${gallery}>: ${galleryLink(hh)}`);
    await expectConsistentLedger(hh.storage, { [owner.userId]: 1 }, { guildId: hh.discord.guildId });
  });

  it('shares after a restart between the result and the press, and a failed post can be tried again', async () => {
    const hh = await start();
    const owner = member();
    await admin(hh, 'settings set', { gallery_channel: gallery });
    const result = await imagine(hh, { prompt: 'a night train', seed: 60 }, owner);
    await hh.restartBot();

    hh.discord.failNext({ method: 'POST', path: new RegExp(`^/channels/${gallery}/messages$`) }, { status: 403, body: { code: 50013, message: 'Missing Permissions' } });
    expect(await answer(press(hh, result, owner))).toBe(
      `❌ The bot cannot post in the gallery channel <#${gallery}> (deleted, or missing permissions). Tell a moderator. Nothing was shared.`,
    );
    expect(await answer(press(hh, result, owner))).toBe(`⭐ Shared to <#${gallery}>: ${galleryLink(hh)}`);
    expect(hh.discord.requests.filter(isGalleryPost).map((r) => r.status)).toEqual([403, 200]);
    await expectConsistentLedger(hh.storage, { [owner.userId]: 1 }, { guildId: hh.discord.guildId });
  });

  it('offers no Share on a private result and never shares one', async () => {
    const hh = await start();
    const owner = member();
    await admin(hh, 'settings set', { gallery_channel: gallery, allow_private: true });
    const result = await imagine(hh, { prompt: 'a secret garden', seed: 70, private: true }, owner);
    expect((result.sent.originalMessage()?.flags ?? 0) & EPHEMERAL).toBe(EPHEMERAL);
    expect(result.share).toBeUndefined();

    const forged = hh.discord.sendButton({ customId: `share:${result.sent.id}`, messageId: result.messageId, channelId: general, ...owner });
    expect(await answer(forged)).toBe('❌ Private results are never shared.');
    expect(galleryPosts(hh)).toEqual([]);
    await expectConsistentLedger(hh.storage, { [owner.userId]: 1 }, { guildId: hh.discord.guildId });
  });

  // -------------------------------------------------------------------------------------------------------------------
  // The starboard

  it('shares a result once it has gallery_stars ⭐ from distinct members: not the author, not bots, not a ⭐ given twice', async () => {
    const hh = await start();
    const owner = member();
    await admin(hh, 'settings set', { gallery_channel: gallery, gallery_stars: 3 });
    const result = await imagine(hh, { prompt: 'a comet over the sea', seed: 80 }, owner);
    const [ada, bo, cy, di] = [member(), member(), member(), member()];
    const checked = () => hh.logs.filter((l) => l.msg === 'starboard: checked a starred message').map((l) => l.outcome);
    const star = async (userId: string) => {
      const before = checked().length;
      expect(hh.discord.addReaction({ messageId: result.messageId, userId })).toBe(true);
      return eventually(() => checked().length > before && checked().at(-1), `the starboard to check ${userId}'s ⭐`);
    };

    expect(await star(owner.userId)).toBe('too few stars');
    // Another bot's ⭐ is dropped on arrival (it is on the message's count, though).
    hh.discord.addReaction({ messageId: result.messageId, userId: snowflake(), bot: true });
    // Ada's ⭐, taken back and given again: one member. Three ⭐ now, but two of them do not count.
    expect(await star(ada.userId)).toBe('too few members');
    hh.discord.removeReaction({ messageId: result.messageId, userId: ada.userId });
    expect(await star(ada.userId)).toBe('too few members');
    expect(await star(bo.userId)).toBe('too few members');
    expect(galleryPosts(hh)).toEqual([]);

    expect(await star(cy.userId)).toBe('shared');
    expect(await star(di.userId)).toBe('already shared');
    const [post, ...more] = galleryPosts(hh);
    expect(more).toEqual([]);
    expect(post?.content).toBe(`⭐ **a comet over the sea** — <@${owner.userId}>\n[Original](${originalLink(hh, result)}) · starred by 3 members`);
    expect(post?.allowed_mentions).toEqual({ parse: [] });
    // The owner's Share press now answers with the starboard's post.
    expect(await answer(press(hh, result, owner))).toBe(`⭐ This result is already in the gallery: ${galleryLink(hh)}`);
    await expectConsistentLedger(hh.storage, { [owner.userId]: 1 }, { guildId: hh.discord.guildId });
  });

  it("costs nothing for a ⭐ on a member's message, another emoji, or where the starboard is off", async () => {
    const hh = await start();
    const owner = member();
    await admin(hh, 'settings set', { gallery_channel: gallery });
    const result = await imagine(hh, { prompt: 'a red kite', seed: 90 }, owner);
    const requestsBefore = hh.discord.requests.length;

    // gallery_stars is 0: the settings say no before any request
    hh.discord.addReaction({ messageId: result.messageId, userId: snowflake() });
    await eventually(() => hh.logs.some((l) => l.msg === 'starboard: off in this server'), 'the starboard to read the settings');
    await admin(hh, 'settings set', { gallery_stars: 1 });
    const afterAdmin = hh.discord.requests.length;
    hh.discord.addReaction({ messageId: hh.discord.memberMessage({ channelId: general }), userId: snowflake() });
    hh.discord.addReaction({ messageId: result.messageId, userId: snowflake(), emoji: '🔥' });
    // one ⭐ that does count, so the test knows the events before it were handled (events arrive in order)
    const cy = member();
    hh.discord.addReaction({ messageId: result.messageId, userId: cy.userId });
    await eventually(() => galleryPosts(hh).length === 1, 'the starred result to be shared');
    const starboardReads = hh.discord.requests
      .slice(afterAdmin)
      .filter((r) => r.method === 'GET' && r.path.startsWith('/channels/'))
      .map((r) => r.path);
    expect(starboardReads).toEqual([
      `/channels/${general}/messages/${result.messageId}`,
      `/channels/${general}/messages/${result.messageId}/reactions/⭐`,
    ]);
    expect(hh.discord.requests.slice(requestsBefore, afterAdmin).filter((r) => r.method === 'GET' && r.path.startsWith('/channels/'))).toEqual([]);
    await expectConsistentLedger(hh.storage, { [owner.userId]: 1 }, { guildId: hh.discord.guildId });
  });
});
