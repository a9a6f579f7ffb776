import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { AuditLog } from '../../src/services/usage/audit-log.js';
import { GuildSettingsRepository, newGuildSettings, type GuildSettings } from '../../src/services/usage/guild-settings.js';
import { dayOf } from '../../src/services/storage/quota/quota-store.js';
import { systemClock } from '../../src/clock.js';
import { ApplicationCommandOptionType } from 'discord.js';
import { snowflake, type RecordedRequest, type SentInteraction, type SlashCommandOption } from '../fakes/fake-discord.js';
import { describeImage } from '../fakes/images.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine, type SentMessage } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';

/** Credits are counted (withheld images must not be charged), but no cooldown gets in the way. */
const LIMITS = { DEFAULT_DAILY_CREDITS: '1000', DEFAULT_COOLDOWN_SECONDS: '0' };
/** A restart leaves a running image journaled at once (the restart test needs no grace period). */
const NO_GRACE = { SHUTDOWN_GRACE_SECONDS: '0' };
/** Every seed the bot picks itself (a re-roll's) is 2^30. */
const CHOSEN_SEED = 2 ** 30;
const EPHEMERAL = 64;
const MANAGE_SERVER = '32';

const GUILD = snowflake();
const GENERAL = snowflake();
const AGE_RESTRICTED = snowflake();
const MOD_LOG = snowflake();

const quiet = createLogger({ level: 'silent', secrets: [] });
const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
/** A result's notes: what follows its prompt line and settings line. */
const notesOf = (message: SentMessage) => (message.content ?? '').split('\n').slice(2).join('\n');

interface SentRow {
  components: Array<{ type: number; label?: string; custom_id?: string }>;
}

describe('every image checked before it is posted, and the server’s policy for flagged ones', () => {
  let h: Harness;
  let settings: GuildSettingsRepository;
  /** A member of their own for each test, so each test's ledger is its own. */
  let member: string;

  beforeAll(async () => {
    h = await startHarness({
      env: { ...LIMITS, ...NO_GRACE },
      random: () => 0.25,
      discord: {
        guilds: [
          {
            id: GUILD,
            channels: [
              { id: GENERAL, name: 'general' },
              { id: AGE_RESTRICTED, name: 'after-dark', nsfw: true },
              { id: MOD_LOG, name: 'mod-log' },
            ],
          },
        ],
      },
    });
    settings = new GuildSettingsRepository(h.storage, quiet);
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(async () => {
    h.segmind.reset();
    h.checker.reset();
    await setServer({});
    member = snowflake();
  });

  /** The server's settings: the fresh defaults with `change` on top. */
  function setServer(change: Partial<GuildSettings>): Promise<GuildSettings> {
    return settings.update(GUILD, (current) => Object.assign(current, newGuildSettings(), change));
  }

  function imagine(options: Record<string, string | number>, where = GENERAL): SentInteraction {
    return sendImagine(h.discord, options, { guildId: GUILD, channelId: where, userId: member });
  }

  async function finished(sent: SentInteraction) {
    const line = await eventually(
      () => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === sent.id),
      'the job’s log line',
      10_000,
    );
    return line as typeof line & { segmind: Array<{ seed: number; check?: 'off' | { flagged: boolean; scores?: Record<string, number>; failure?: string } }>; outcome: string };
  }

  /** `/imagine-admin [group] sub` by a member with Manage Server; answers the reply's text. */
  async function admin(path: string, options: SlashCommandOption[] = []): Promise<string> {
    const [first, second] = path.split(' ') as [string, string | undefined];
    const leaf = { name: second ?? first, type: ApplicationCommandOptionType.Subcommand, options };
    const sent = h.discord.sendSlashCommand({
      name: 'imagine-admin',
      options: [second === undefined ? leaf : { name: first, type: ApplicationCommandOptionType.SubcommandGroup, options: [leaf] }],
      guildId: GUILD,
      channelId: GENERAL,
      userId: snowflake(),
      permissions: MANAGE_SERVER,
    });
    return messageOf((await sent.waitForRequest(isEdit)).json).content ?? '';
  }

  /** flux_bot_images_checked_total by verdict, now. */
  async function checkedTotals(): Promise<Record<string, number>> {
    const metric = await h.bot.metrics.registry.getSingleMetric('flux_bot_images_checked_total')?.get();
    return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.verdict), v.value]));
  }

  const logPosts = () => h.discord.requests.filter((r) => r.method === 'POST' && r.path === `/channels/${MOD_LOG}/messages`);
  const privateFollowUps = (sent: SentInteraction) =>
    sent.followUps().map((r) => messageOf(r.json)).filter((m) => ((m.flags ?? 0) & EPHEMERAL) === EPHEMERAL);

  const ledger = (used: number) => expectConsistentLedger(h.storage, { [member]: used }, { guildId: GUILD });

  it('by default posts a flagged image as a SPOILER_ attachment that no embed shows, with a short note, and charges it', async () => {
    h.checker.set('flagged', 42);
    const sent = imagine({ prompt: 'a day at the beach', seed: 42 });
    const edit = await sent.waitForRequest(isEdit);

    expect(edit.files.map((f) => f.name)).toEqual(['SPOILER_flux-42.webp']);
    expect(await describeImage(edit.files[0]!.bytes)).toMatchObject({ format: 'webp' });
    const message = messageOf(edit.json);
    expect(message.embeds).toHaveLength(1);
    expect(message.embeds![0]!.image, 'no embed shows the spoilered image').toBeUndefined();
    expect(JSON.stringify(message.embeds)).not.toContain('attachment://');
    expect(notesOf(message)).toBe('⚠️ This image may show sensitive content, so it is hidden behind a spoiler: click to show.');
    expect(message.attachments?.map((a) => a.filename)).toEqual(['SPOILER_flux-42.webp']);

    // the check's scores are in the job's log line, next to the image's seed
    const line = await finished(sent);
    expect(line.segmind).toHaveLength(1);
    expect(line.segmind[0]).toMatchObject({ seed: 42, check: { flagged: true, scores: { Porn: 0.91, Hentai: 0.03, Sexy: 0.04, Drawing: 0.01, Neutral: 0.01 } } });
    expect(line.outcome).toBe('delivered');
    expect(h.checker.checks.map((c) => c.seed)).toEqual([42]);
    expect(privateFollowUps(sent)).toEqual([]);
    await ledger(1);
  });

  it('checks every image of a 4-image request and spoilers only the flagged one, the others shown by embeds', async () => {
    h.checker.set('flagged', 1001);
    const sent = imagine({ prompt: 'four kites', samples: 4, seed: 1000, output_format: 'png' });
    const edit = await sent.waitForRequest(isEdit);

    expect(edit.files.map((f) => f.name)).toEqual(['flux-1000.png', 'SPOILER_flux-1001.png', 'flux-1002.png', 'flux-1003.png']);
    const message = messageOf(edit.json);
    expect(message.embeds!.map((e) => e.image?.url)).toEqual(['attachment://flux-1000.png', 'attachment://flux-1002.png', 'attachment://flux-1003.png']);
    expect(JSON.stringify(message.embeds)).not.toContain('SPOILER_');
    expect(notesOf(message)).toBe('⚠️ Image 2 of 4 (seed 1001) may show sensitive content, so it is hidden behind a spoiler: click to show.');
    expect(h.checker.checks.map((c) => c.seed).sort()).toEqual([1000, 1001, 1002, 1003]);
    const line = await finished(sent);
    expect(line.segmind.map((s) => [s.seed, typeof s.check === 'object' ? s.check.flagged : s.check])).toEqual([
      [1000, false],
      [1001, true],
      [1002, false],
      [1003, false],
    ]);
    await ledger(4);
  });

  it('with image_check block withholds a flagged image, tells only the member which one and why, and charges nothing', async () => {
    await setServer({ imageCheck: 'block' });
    h.checker.set('flagged', 77);
    const sent = imagine({ prompt: 'a day at the beach', seed: 77 });

    // nothing was posted: the "thinking…" reply is deleted and both notices are private
    const told = await eventually(() => privateFollowUps(sent)[1], 'the private notices');
    expect(privateFollowUps(sent)[0]!.content).toBe("❌ No image was posted: this server's image check withheld it. Nothing was charged.");
    expect(told.content).toBe(
      "🔒 Withheld: your image (seed `77`) — this server withholds images its image check flags as possibly sexual content. It was not posted and not charged. The server's moderators can see the flag.",
    );
    expect(sent.edits(), 'the public reply never written to').toEqual([]);
    expect(sent.originalMessage(), 'nothing public left').toBeUndefined();
    expect(sent.followUps(), 'nothing but the two private notices').toHaveLength(2);
    expect((await finished(sent)).outcome).toBe('failed');
    await ledger(0);
  });

  it('with image_check block posts the clean images of a request, withholds the flagged one and charges only what was posted', async () => {
    await setServer({ imageCheck: 'block' });
    h.checker.set('flagged', 502);
    const sent = imagine({ prompt: 'three owls', samples: 3, seed: 500 });
    const edit = await sent.waitForRequest(isEdit);

    expect(edit.files.map((f) => f.name)).toEqual(['flux-500.webp', 'flux-501.webp']);
    const message = messageOf(edit.json);
    // the channel is not told which image was withheld: only the member is, privately
    expect(notesOf(message)).toBe('');
    expect(JSON.stringify(message)).not.toContain('flux-502');
    const told = await eventually(() => privateFollowUps(sent)[0], 'the private notice');
    expect(told.content).toContain('🔒 Withheld: image 3 (seed `502`)');
    expect((await finished(sent)).outcome).toBe('partial');
    await ledger(2);
  });

  it('posts a flagged image as it is in an age-restricted channel of a server whose NSFW policy is age_restricted', async () => {
    await setServer({ nsfwPolicy: 'age_restricted', logChannelId: MOD_LOG });
    h.checker.set('flagged', 5, 6);
    const sent = imagine({ prompt: 'a figure study', seed: 5 }, AGE_RESTRICTED);
    const edit = await sent.waitForRequest(isEdit);
    expect(edit.files.map((f) => f.name)).toEqual(['flux-5.webp']);
    expect(messageOf(edit.json).embeds![0]!.image?.url).toBe('attachment://flux-5.webp');
    expect(notesOf(messageOf(edit.json))).toBe('');

    // the same server's other channels still spoiler it
    const elsewhere = imagine({ prompt: 'a figure study', seed: 6 });
    expect((await elsewhere.waitForRequest(isEdit)).files.map((f) => f.name)).toEqual(['SPOILER_flux-6.webp']);
    await finished(elsewhere);
    // the age-restricted channel's image is posted as it is whatever its verdict, so it is not checked at all
    expect(h.checker.checks.map((c) => c.seed)).toEqual([6]);
    await ledger(2);
  });

  it('decides a job resumed after a restart as the first run would have: the age-restricted channel comes from its journal entry', async () => {
    await setServer({ nsfwPolicy: 'age_restricted' });
    h.checker.set('flagged', 61);
    h.segmind.pause();
    const sent = imagine({ prompt: 'a figure study', seed: 61 }, AGE_RESTRICTED);
    await h.segmind.waitForInFlight(1);
    await h.restartBot(); // the running image is stopped and stays journaled; the new bot resumes it
    h.segmind.resume();

    const edit = await sent.waitForRequest((r) => isEdit(r) && r.files.length > 0, 10_000);
    expect(edit.files.map((f) => f.name)).toEqual(['flux-61.webp']);
    expect(h.logs.some((l) => l.msg === 'resuming a request left unfinished by the last run' && l.jobId === sent.id)).toBe(true);
    await finished(sent);
    await ledger(1);
  });

  it('spoilers a flagged image in an age-restricted channel when the server’s NSFW policy is off', async () => {
    h.checker.set('flagged', 8);
    const sent = imagine({ prompt: 'a figure study', seed: 8 }, AGE_RESTRICTED);
    expect((await sent.waitForRequest(isEdit)).files.map((f) => f.name)).toEqual(['SPOILER_flux-8.webp']);
    await finished(sent);
    await ledger(1);
  });

  it('with image_check off posts the image unchecked (the classifier is not asked), and neither reports nor counts it', async () => {
    await setServer({ imageCheck: 'off', logChannelId: MOD_LOG, flagLimit: 1 });
    h.checker.set('flagged', 9);
    const before = logPosts().length;
    const sent = imagine({ prompt: 'a day at the beach', seed: 9 });
    const edit = await sent.waitForRequest(isEdit);
    expect(edit.files.map((f) => f.name)).toEqual(['flux-9.webp']);
    expect(messageOf(edit.json).embeds![0]!.image?.url).toBe('attachment://flux-9.webp');
    const line = await finished(sent);
    expect(line.segmind[0]!.check, 'logged as not checked').toBe('off');
    expect(h.checker.checks).toHaveLength(0);
    expect(logPosts()).toHaveLength(before);
    expect((await h.storage.quota.stats(GUILD, dayOf(Date.now())))[`flagged:${member}`]).toBeUndefined();
    expect((await settings.get(GUILD)).blocked[member]).toBeUndefined();
    await ledger(1);
  });

  it('checks the image of a re-roll too, and spoilers it when flagged', async () => {
    const first = imagine({ prompt: 'a lighthouse', seed: 11 });
    const firstEdit = await first.waitForRequest(isEdit);
    expect(firstEdit.files.map((f) => f.name)).toEqual(['flux-11.webp']);
    await finished(first);
    const rows = (messageOf(firstEdit.json) as SentMessage & { components?: SentRow[] }).components ?? [];
    const reroll = rows.flatMap((r) => r.components).find((c) => c.label === 'Re-roll')?.custom_id;
    expect(reroll).toBeDefined();

    h.checker.set('flagged', CHOSEN_SEED);
    const pressed = h.discord.sendButton({ customId: reroll!, messageId: first.originalMessage()!.id, guildId: GUILD, channelId: GENERAL, userId: member });
    const edit = await pressed.waitForRequest(isEdit);
    expect(edit.files.map((f) => f.name)).toEqual([`SPOILER_flux-${CHOSEN_SEED}.webp`]);
    expect(messageOf(edit.json).embeds![0]!.image).toBeUndefined();
    expect(h.checker.checks.map((c) => c.seed)).toEqual([11, CHOSEN_SEED]);
    await finished(pressed);
    await ledger(2);
  });

  it('counts an image that could not be checked (a timed-out check) as flagged: fail closed', async () => {
    await setServer({ logChannelId: MOD_LOG });
    h.checker.set('timeout', 13);
    const before = logPosts().length;
    const counted = await checkedTotals();
    const sent = imagine({ prompt: 'a quiet harbour', seed: 13 });
    const edit = await sent.waitForRequest(isEdit);
    expect(edit.files.map((f) => f.name)).toEqual(['SPOILER_flux-13.webp']);
    const line = await finished(sent);
    expect(line.segmind[0]!.check).toMatchObject({ flagged: true, failure: 'timeout' });
    expect(await checkedTotals(), 'counted in flux_bot_images_checked_total').toEqual({ ...counted, failed: counted.failed! + 1 });
    const report = await eventually(() => logPosts()[before], 'the log-channel report');
    expect(messageOf(report.json).content).toContain('seed `13`: not checked: the check timed out (counted as flagged) → **posted as a spoiler**');
    await ledger(1);
  });

  it('with image_check block withholds an image whose check failed', async () => {
    await setServer({ imageCheck: 'block' });
    h.checker.set('worker_died', 14);
    const sent = imagine({ prompt: 'a quiet harbour', seed: 14 });
    const told = await eventually(() => privateFollowUps(sent)[1], 'the private notices');
    expect(told.content).toContain('it could not be checked');
    expect(sent.requests().flatMap((r) => r.files), 'nothing posted').toEqual([]);
    expect(sent.originalMessage(), 'nothing public left').toBeUndefined();
    await finished(sent);
    await ledger(0);
  });

  it('reports each flagged image in the log channel without the image itself, and counts it for /imagine-admin usage', async () => {
    await setServer({ logChannelId: MOD_LOG });
    h.checker.set('flagged', 21);
    const before = logPosts().length;
    const sent = imagine({ prompt: 'a *day* at the beach', samples: 2, seed: 20 });
    await sent.waitForRequest(isEdit);
    await finished(sent);

    const posts = logPosts().slice(before);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.files).toEqual([]);
    expect(messageOf(posts[0]!.json)).toMatchObject({
      content: [
        `🔞 The image check flagged an image made for <@${member}> in <#${GENERAL}>.`,
        'Prompt: “a \\*day\\* at the beach”',
        '• image 2 of 2, seed `21`: Porn 0.91 · Sexy 0.04 · Hentai 0.03 · Drawing 0.01 · Neutral 0.01 → **posted as a spoiler**',
      ].join('\n'),
      allowed_mentions: { parse: [] },
    });
    const stats = await h.storage.quota.stats(GUILD, dayOf(Date.now()));
    expect(stats[`flagged:${member}`]).toBe(1);
    expect(stats.flagged).toBeGreaterThanOrEqual(1);
    await ledger(2);
  });

  it('attaches the flagged image to its report, as a spoiler, when log_flagged_images is on (also a withheld one)', async () => {
    await setServer({ logChannelId: MOD_LOG, logFlaggedImages: true, imageCheck: 'block' });
    h.checker.set('flagged', 31);
    const before = logPosts().length;
    const sent = imagine({ prompt: 'a day at the beach', seed: 31, output_format: 'png' });
    await finished(sent);

    const posts = logPosts().slice(before);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.files.map((f) => f.name)).toEqual(['SPOILER_flux-31.png']);
    expect(await describeImage(posts[0]!.files[0]!.bytes)).toMatchObject({ format: 'png' });
    const report = messageOf(posts[0]!.json);
    expect(report.content).toContain('→ **withheld (not posted, not charged)**');
    expect(report.embeds ?? []).toEqual([]);
    await ledger(0);
  });

  it('blocks a member automatically once they reach flag_limit flagged images in a day, with a reason they see, audited', async () => {
    await setServer({ logChannelId: MOD_LOG, flagLimit: 3 });
    h.checker.set('flagged', 40, 41, 42);
    const first = imagine({ prompt: 'a day at the beach', seed: 40 });
    await finished(first);
    expect(privateFollowUps(first)).toEqual([]);
    expect((await settings.get(GUILD)).blocked[member]).toBeUndefined();

    const second = imagine({ prompt: 'a day at the beach', samples: 2, seed: 41 });
    await finished(second);
    const told = await eventually(() => privateFollowUps(second)[0], 'the private notice of the block');
    expect(told.content).toBe(
      "🚫 You have now reached this server's limit of flagged images for today and are blocked from `/imagine` here. Automatic: 3 flagged images in one day (this server's limit). A moderator can lift it.",
    );
    const block = (await settings.get(GUILD)).blocked[member];
    expect(block).toMatchObject({ by: h.discord.applicationId, reason: "Automatic: 3 flagged images in one day (this server's limit). A moderator can lift it." });
    const [latest] = await new AuditLog(h.storage, systemClock, () => Promise.resolve(), quiet).list(GUILD);
    expect(latest).toMatchObject({ actorId: h.discord.applicationId, action: 'blocked a member', details: `<@${member}> — ${block!.reason}` });
    await eventually(
      () => logPosts().find((p) => messageOf(p.json).content === `🛠️ <@${h.discord.applicationId}> blocked a member: <@${member}> — ${block!.reason}`),
      'the block in the log channel',
    );

    const refused = await refusalAfterDeferral(imagine({ prompt: 'a day at the beach', seed: 43 }));
    expect(refused).toBe(`❌ You are blocked from generating images in this server. Reason: ${block!.reason}`);
    await ledger(3);
  });

  it('lets moderators set, view and reset image_check, log_flagged_images and flag_limit, and shows flagged counts in usage', async () => {
    const { String: STRING, Boolean: BOOLEAN, Integer: INTEGER } = ApplicationCommandOptionType;
    expect(
      await admin('settings set', [
        { name: 'image_check', type: STRING, value: 'block' },
        { name: 'log_flagged_images', type: BOOLEAN, value: true },
        { name: 'flag_limit', type: INTEGER, value: 5 },
      ]),
    ).toBe('✅ Changed `image_check` → block, `log_flagged_images` → yes, `flag_limit` → 5 per member per UTC day.');
    expect(await settings.get(GUILD)).toMatchObject({ imageCheck: 'block', logFlaggedImages: true, flagLimit: 5 });
    const view = await admin('settings view');
    expect(view).toContain('Image check: **block** — flagged images are withheld (not charged) _(server setting; bot default spoiler)_');
    expect(view).toContain('Flagged images in the log channel: reported with the image (as a spoiler) _(server setting)_');
    expect(view).toContain('Flag limit: blocked automatically at **5** flagged images per member per UTC day _(server setting)_');

    h.checker.set('flagged', 71);
    await finished(imagine({ prompt: 'a day at the beach', seed: 71 }));
    const stats = await h.storage.quota.stats(GUILD, dayOf(Date.now()));
    expect(stats[`flagged:${member}`]).toBe(1);
    const [top] = Object.entries(stats)
      .filter(([key]) => key.startsWith('flagged:'))
      .sort((a, b) => b[1] - a[1]);
    const usage = await admin('usage');
    expect(usage).toContain(`Flagged images (image check): today **${stats.flagged}** · last 7 days: **${stats.flagged}** — by member: <@${top![0].slice('flagged:'.length)}> ${top![1]}`);

    expect(await admin('settings reset', [{ name: 'setting', type: STRING, value: 'image_check' }])).toBe('✅ Reset `image_check` to the bot default.');
    await admin('settings reset', [{ name: 'setting', type: STRING, value: 'log_flagged_images' }]);
    await admin('settings reset', [{ name: 'setting', type: STRING, value: 'flag_limit' }]);
    expect(await settings.get(GUILD)).toMatchObject({ imageCheck: null, logFlaggedImages: false, flagLimit: 0 });
    const after = await admin('settings view');
    expect(after).toContain('Image check: **spoiler** — flagged images are posted behind a spoiler _(bot default)_');
    expect(after).toContain('Flag limit: none _(bot default)_');
    await ledger(0);
  });
});
