import { ApplicationCommandOptionType, ChannelType } from 'discord.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeImage } from '../fakes/images.js';
import { snowflake, type RecordedRequest } from '../fakes/fake-discord.js';
import { eventually, startHarness, TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral as privateAnswer } from '../support/refusals.js';

/** These tests are about generation, not usage limits. */
const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '100000', DEFAULT_COOLDOWN_SECONDS: '0' };
/** Many Segmind failures in a row here are on purpose: keep the circuit breaker out of the way. */
const NO_BREAKER = { failureThreshold: 1_000_000, openMs: 1, maxOpenMs: 1 };

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');

describe('/imagine end to end, through the real discord.js client', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { SEGMIND_MAX_RETRIES: '1', ...NO_LIMITS }, breaker: NO_BREAKER });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.segmind.reset());

  it.each(['webp', 'jpg', 'png'] as const)(
    'defers at once, then posts a real %s image shown by an attachment:// embed',
    async (format) => {
      let acknowledgedBeforeSegmind: boolean | undefined;
      const interaction = sendImagine(h.discord, { prompt: 'a red fox in the snow', output_format: format, seed: 42 });
      h.segmind.respondWith(() => {
        acknowledgedBeforeSegmind = interaction.callback() !== undefined;
        return { kind: 'image' };
      });

      const callback = await interaction.waitForCallback();
      expect(callback.json).toMatchObject({ type: 5 }); // DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
      const edit = await interaction.waitForRequest(isEdit);
      expect(acknowledgedBeforeSegmind).toBe(true);

      expect(edit.files).toHaveLength(1);
      const file = edit.files[0]!;
      expect(file.name).toBe(`flux-42.${format}`);
      expect(await describeImage(file.bytes)).toEqual({ format, width: 64, height: 64 });

      const message = messageOf(edit.json);
      expect(message.embeds).toHaveLength(1);
      const embed = message.embeds![0]!;
      expect(embed.image?.url).toBe(`attachment://flux-42.${format}`);
      expect(message.content).toMatch(new RegExp(`^\\*\\*a red fox in the snow\\*\\* — <@${h.discord.defaultUserId}>\nseed 42 · 1:1 · 25 steps · guidance 3\\.5 · \\d+\\.\\d s$`));
    },
  );

  it('maps every option onto the Segmind body exactly', async () => {
    const interaction = sendImagine(h.discord, {
      prompt: 'a lighthouse at dusk, oil painting',
      aspect_ratio: '16:9',
      guidance: 7.25,
      steps: 40,
      samples: 1,
      seed: 123456,
      output_format: 'jpg',
      output_quality: 65,
      prompt_strength: 0.35,
    });
    const edit = await interaction.waitForRequest(isEdit);
    expect(h.segmind.requests).toHaveLength(1);
    expect(h.segmind.requests[0]!.body).toStrictEqual({
      prompt: 'a lighthouse at dusk, oil painting',
      aspect_ratio: '16:9',
      guidance: 7.25,
      steps: 40,
      samples: 1,
      seed: 123456,
      output_format: 'jpg',
      output_quality: 65,
      prompt_strength: 0.35,
    });
    expect(await describeImage(edit.files[0]!.bytes)).toEqual({ format: 'jpg', width: 64, height: 36 });
    expect(messageOf(edit.json).content).toContain('\nseed 123456 · 16:9 · 40 steps · guidance 7.25 · ');
  });

  it('uses the defaults for omitted options and reports the random seed it chose', async () => {
    const interaction = sendImagine(h.discord, { prompt: '  a quiet harbour  ' });
    const edit = await interaction.waitForRequest(isEdit);
    const body = h.segmind.requests[0]!.body as { seed: number };
    expect(body).toStrictEqual({
      prompt: 'a quiet harbour',
      aspect_ratio: '1:1',
      guidance: 3.5,
      steps: 25,
      samples: 1,
      seed: body.seed,
      output_format: 'webp',
      output_quality: 80,
      prompt_strength: 0.8,
    });
    expect(Number.isInteger(body.seed) && body.seed >= 0 && body.seed < 2 ** 32).toBe(true);
    expect(messageOf(edit.json).content).toContain(`\nseed ${body.seed} · `);
    expect(edit.files[0]!.name).toBe(`flux-${body.seed}.webp`);
  });

  it('turns samples=4 into 4 single-image calls with consecutive seeds, posted in one message', async () => {
    h.segmind.pause();
    const interaction = sendImagine(h.discord, { prompt: 'four cats', samples: 4, seed: 1000, output_format: 'png' });
    await h.segmind.waitForInFlight(4); // all four asked before any answer: in parallel
    h.segmind.resume();
    const edit = await interaction.waitForRequest(isEdit);
    const bodies = h.segmind.requests.map((r) => r.body as { seed: number; samples: number });
    expect(bodies.map((b) => b.seed).sort()).toEqual([1000, 1001, 1002, 1003]);
    expect(bodies.every((b) => b.samples === 1)).toBe(true);

    expect(edit.files.map((f) => f.name)).toEqual(['flux-1000.png', 'flux-1001.png', 'flux-1002.png', 'flux-1003.png']);
    const decoded = await Promise.all(edit.files.map((f) => describeImage(f.bytes)));
    expect(decoded.every((d) => d.format === 'png')).toBe(true);
    const message = messageOf(edit.json);
    expect(message.embeds!.map((e) => e.image?.url)).toEqual(edit.files.map((f) => `attachment://${f.name}`));
    expect(message.content).toContain('\nseeds 1000–1003 · ');
    expect(h.discord.requests.filter((r) => r.path.includes(interaction.token) && isEdit(r))).toHaveLength(1);
  });

  it('posts the images that succeeded and says which one failed', async () => {
    h.segmind.respondWith((req) =>
      (req.body as { seed: number }).seed === 501 ? { kind: 'error', status: 500 } : { kind: 'image' },
    );
    const interaction = sendImagine(h.discord, { prompt: 'three owls', samples: 3, seed: 500 });
    const edit = await interaction.waitForRequest(isEdit);
    expect(edit.files.map((f) => f.name)).toEqual(['flux-500.webp', 'flux-502.webp']);
    const message = messageOf(edit.json);
    expect((message.content ?? '').split('\n').slice(2)).toEqual(['⚠️ Image 2 of 3 (seed 501) failed, not charged: The image service had a problem — try again in a moment.']);
    // the failing seed was retried once (SEGMIND_MAX_RETRIES=1), the others asked once
    expect(h.segmind.requests.filter((r) => (r.body as { seed: number }).seed === 501)).toHaveLength(2);
  });

  it.each([
    [400, 1, 'The image service did not accept these settings. Change them and try again. It said: “Invalid parameter: prompt”'],
    [403, 1, 'The image service refused this request.'],
    [404, 1, 'The image model is not available right now. Try again later.'],
    [422, 1, 'The image service did not accept these settings.'],
    [429, 2, 'The image service is busy — try again in a minute.'],
    [500, 2, 'The image service had a problem — try again in a moment.'],
    [502, 2, 'The image service had a problem — try again in a moment.'],
    [503, 2, 'The image service had a problem — try again in a moment.'],
    [504, 2, 'The image service took too long to answer — try again in a moment.'],
  ])('tells the member privately and plainly what HTTP %i from Segmind means (%i calls)', async (status, calls, text) => {
    h.segmind.setDefault(
      status === 400 ? { kind: 'error', status, body: '{"error":"Invalid parameter: prompt"}' } : { kind: 'error', status },
    );
    const content = await privateAnswer(sendImagine(h.discord, { prompt: 'a storm' }));
    expect(content).toContain('❌ No image could be generated.');
    expect(content).toContain(text);
    expect(content).toContain('Nothing was charged.');
    expect(content).not.toMatch(/segmind/i);
    expect(h.segmind.requests).toHaveLength(calls);
  });

  it('survives an HTML error page', async () => {
    h.segmind.setDefault({
      kind: 'error',
      status: 502,
      contentType: 'text/html',
      body: '<html><body><h1>502 Bad Gateway</h1></body></html>',
    });
    expect(await privateAnswer(sendImagine(h.discord, { prompt: 'x' }))).toContain('The image service had a problem');
  });

  it.each([
    [{ kind: 'notAnImage' as const }, 'The image service sent back something that is not an image'],
    [{ kind: 'wrongFormat' as const }, 'The image service sent back something that is not an image'],
    [{ kind: 'image' as const, contentType: 'text/plain' }, 'The image service sent back something that is not an image'],
  ])('refuses to post a bad response (%j)', async (scenario, text) => {
    h.segmind.setDefault(scenario);
    const interaction = sendImagine(h.discord, { prompt: 'x' });
    expect(await privateAnswer(interaction)).toContain(text);
    expect(interaction.requests().flatMap((r) => r.files)).toHaveLength(0);
  });

  it.each([
    [{ prompt: 'hello\u0000world' }, '`prompt`: contains control characters'],
    [{ prompt: 'x'.repeat(2001) }, '`prompt`: is longer than 2000 characters'],
    [{ prompt: '   ' }, '`prompt`: is empty'],
    [{ prompt: 'ok', steps: 80 }, '`steps`: must be between 1 and 50'],
    [{ prompt: 'ok', aspect_ratio: '4:3' }, '`aspect_ratio`: must be one of'],
    [{ prompt: 'ok', samples: 9 }, '`samples`: must be between 1 and 4'],
  ])('refuses %j privately before any Segmind call', async (options, text) => {
    const interaction = sendImagine(h.discord, options);
    const callback = await interaction.waitForCallback();
    const message = messageOf(callback.json);
    expect(callback.json).toMatchObject({ type: 4 }); // a reply, not a deferral
    expect(message.flags! & 64).toBe(64); // ephemeral
    expect(message.content).toContain(text);
    expect(h.segmind.requests).toHaveLength(0);
  });

  it('writes one log line per job with a correlation id and Segmind’s remaining credits', async () => {
    const interaction = sendImagine(h.discord, { prompt: 'log me '.repeat(40), seed: 7 });
    const line = await eventually(
      () => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === interaction.id),
      'the job log line',
    );
    expect(line).toMatchObject({
      interactionId: interaction.id,
      guildId: h.discord.guildId,
      remainingCredits: 9.87,
      outcome: 'delivered',
      delivered: 1,
      params: { seed: 7, steps: 25 },
      segmind: [{ seed: 7, status: 200 }],
    });
    expect(line.segmind, 'one Segmind call, per image').toHaveLength(1);
    expect(line.userId).toBe(h.discord.defaultUserId);
    expect((line.params as { prompt: string }).prompt.length).toBeLessThanOrEqual(120);
    expect(typeof line.durationMs).toBe('number');
  });

  it('never lets the bot token or the Segmind key reach a log line or a message', () => {
    expect(h.logs.length).toBeGreaterThan(20);
    const everything = h.rawLogs() + JSON.stringify(h.discord.requests.map((r) => r.json));
    expect(everything).not.toContain(TEST_SEGMIND_KEY);
    expect(everything).not.toContain(TEST_DISCORD_TOKEN);
  });
});

describe('/imagine when Segmind does not answer in time', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: NO_LIMITS, breaker: NO_BREAKER, config: { SEGMIND_TIMEOUT_SECONDS: 0.25, SEGMIND_MAX_RETRIES: 1 } });
  });
  beforeEach(() => h.segmind.reset());
  afterAll(async () => {
    await h?.stop();
  });

  it('gives up after the timeout and its retry, and says so', async () => {
    h.segmind.setDefault({ kind: 'hang' });
    const interaction = sendImagine(h.discord, { prompt: 'slow' });
    expect(await privateAnswer(interaction)).toContain('The image service took too long to answer');
    expect(h.segmind.requests).toHaveLength(2);
  });

  it('posts in the channel, mentioning the member, when the result outlives the 15-minute token', async () => {
    // created 16 minutes ago: Discord no longer accepts edits of the original reply
    const interaction = sendImagine(h.discord, { prompt: 'late', seed: 5 }, { createdAt: Date.now() - 16 * 60_000 });
    const post = await h.discord.waitForRequest((r) => r.method === 'POST' && r.path === `/channels/${h.discord.channelId}/messages`);
    const message = messageOf(post.json) as { content?: string; allowed_mentions?: { users?: string[] } };
    expect(message.content).toContain(`<@${h.discord.defaultUserId}>`);
    expect(message.allowed_mentions?.users).toEqual([h.discord.defaultUserId]);
    expect(post.files.map((f) => f.name)).toEqual(['flux-5.webp']);
    expect(interaction.edits()).toHaveLength(0);
    const finished = await eventually(
      () => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === interaction.id),
      'the end of the late job',
    );
    expect(finished).toMatchObject({ outcome: 'delivered', delivered: 1 });
    await expectConsistentLedger(h.storage, { [h.discord.defaultUserId]: 1 }, { guildId: h.discord.guildId });
  });
});

describe('/imagine when the Segmind account needs its operator', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.stop();
  });

  it.each([
    [401, "Image generation is paused until the bot's owner fixes its account.", "paused until the bot's owner fixes its account", 'bad_api_key'],
    [406, "Image generation is paused until the bot's owner tops up its account.", "paused until the bot's owner tops up its account", 'out_of_credits'],
  ])('pauses generation bot-wide after HTTP %i and refuses new requests for free', async (status, firstText, pausedText, kind) => {
    h = await startHarness({ env: NO_LIMITS });
    h.segmind.setDefault({ kind: 'error', status });
    expect(await privateAnswer(sendImagine(h.discord, { prompt: 'first' }))).toContain(firstText);

    const second = sendImagine(h.discord, { prompt: 'second' }, { userId: '222222222222222222' });
    const callback = await second.waitForCallback();
    expect(callback.json).toMatchObject({ type: 4 });
    expect(messageOf(callback.json).content).toContain(`Image generation is paused`);
    expect(messageOf(callback.json).content).toContain(pausedText);
    expect(h.segmind.requests).toHaveLength(1);
    const pauses = h.logs.filter((l) => l.msg.startsWith('generation paused bot-wide'));
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toMatchObject({ kind });
    await eventually(() => h.logs.some((l) => l.msg === 'imagine job finished' && l.outcome === 'failed'), 'the failed job to end');
    await expectConsistentLedger(h.storage, { [h.discord.defaultUserId]: 0, '222222222222222222': 0 }, { guildId: h.discord.guildId });
  });

  it('tells a server’s log channel once when two requests fail with HTTP 401, and refuses the next one as paused', async () => {
    const guildId = snowflake();
    const general = snowflake();
    const modLog = snowflake();
    const moderator = snowflake();
    const [alice, bob, carol] = [snowflake(), snowflake(), snowflake()];
    h = await startHarness({
      env: { ...NO_LIMITS, SEGMIND_CONCURRENCY: '2', SEGMIND_MAX_RETRIES: '0' },
      breaker: NO_BREAKER,
      discord: {
        guilds: [
          {
            id: guildId,
            channels: [
              { id: general, name: 'general' },
              { id: modLog, name: 'mod-log' },
            ],
          },
        ],
      },
    });
    const harness = h;
    const isLogPost = (r: RecordedRequest) => r.method === 'POST' && r.path === `/channels/${modLog}/messages`;

    // /imagine-admin settings set log_channel:#mod-log, by a member with Manage Server
    const settings = harness.discord.sendSlashCommand({
      name: 'imagine-admin',
      guildId,
      channelId: general,
      userId: moderator,
      permissions: String(1 << 5),
      options: [
        {
          name: 'settings',
          type: ApplicationCommandOptionType.SubcommandGroup,
          options: [
            {
              name: 'set',
              type: ApplicationCommandOptionType.Subcommand,
              options: [{ name: 'log_channel', type: ApplicationCommandOptionType.Channel, value: modLog }],
            },
          ],
        },
      ],
      resolved: { channels: { [modLog]: { id: modLog, name: 'mod-log', type: ChannelType.GuildText, permissions: '0' } } },
    });
    const changed = await settings.waitForRequest(isEdit);
    expect(messageOf(changed.json).content).toContain('log_channel');
    const auditPosts = harness.discord.requests.filter(isLogPost);
    // The test line that proves the bot can post there, then the audit line of the change.
    expect(auditPosts).toHaveLength(2);
    expect(messageOf(auditPosts[1]!.json).content).toBe(`🛠️ <@${moderator}> changed settings: \`log_channel\` → <#${modLog}>`);

    // Two requests reach Segmind together, and both are answered 401.
    harness.segmind.setDefault({ kind: 'error', status: 401 });
    harness.segmind.pause();
    const first = sendImagine(harness.discord, { prompt: 'first' }, { userId: alice, guildId, channelId: general });
    const second = sendImagine(harness.discord, { prompt: 'second' }, { userId: bob, guildId, channelId: general });
    await harness.segmind.waitForInFlight(2);
    harness.segmind.resume();
    for (const job of [first, second]) expect(await privateAnswer(job)).toContain("Image generation is paused until the bot's owner fixes its account.");
    const post = await harness.discord.waitForRequest((r) => isLogPost(r) && !auditPosts.includes(r));
    expect(post.status).toBe(200);
    expect(messageOf(post.json).content).toMatch(/^⚠️ Image generation is paused for the whole bot: Segmind \(the image service\) rejected the bot's API key\./);

    // The next request is refused at once, for free, as paused.
    const third = sendImagine(harness.discord, { prompt: 'third' }, { userId: carol, guildId, channelId: general });
    const refused = await third.waitForCallback();
    expect(refused.json).toMatchObject({ type: 4 });
    expect(messageOf(refused.json).content).toContain('Image generation is paused');
    expect(messageOf(refused.json).content).toContain("paused until the bot's owner fixes its account");

    const jobs = [first.id, second.id];
    await eventually(
      () => jobs.every((id) => harness.logs.some((l) => l.msg === 'imagine job finished' && l.jobId === id && l.outcome === 'failed')),
      'both failed jobs to end',
    );
    expect(harness.segmind.requests).toHaveLength(2);
    expect(harness.logs.filter((l) => l.msg.startsWith('generation paused bot-wide'))).toHaveLength(1);
    expect(harness.discord.requests.filter(isLogPost).filter((r) => !auditPosts.includes(r))).toEqual([post]);
    await expectConsistentLedger(harness.storage, { [alice]: 0, [bob]: 0, [carol]: 0 }, { guildId });
  });
});
