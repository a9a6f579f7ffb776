import { ApplicationCommandOptionType } from 'discord.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/services/segmind/flux-params.js';
import { snowflake, type RecordedRequest, type SentInteraction } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';

/**
 * What members read about their own requests: failures and cancellations answered privately with nothing left in the
 * channel, plain words (no service names or internals), the result naming prompt and author without a ping, and
 * `/credits` counting bonus credits.
 */

const LIMITS_ENV = { DEFAULT_DAILY_CREDITS: '100', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_MAX_RETRIES: '0' };
const NO_BREAKER = { failureThreshold: 1_000_000, openMs: 1, maxOpenMs: 1 };
const EPHEMERAL = 64;
const INTERNALS = /segmind|storage|api key|15-minute|operator|\(s\)/i;

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
const isResultEdit = (r: RecordedRequest) => isEdit(r) && r.files.length > 0;
const textOf = (r: RecordedRequest) => (r.json === undefined ? '' : (messageOf(r.json).content ?? ''));

function finished(h: Harness, sent: SentInteraction) {
  return eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === sent.id), `the end of job ${sent.id}`, 10_000);
}

/** Messages of this interaction (its reply and follow-ups) that everyone in the channel can see now. */
function publicMessagesOf(h: Harness, sent: SentInteraction) {
  return h.discord.publicMessages(h.discord.channelId).filter((m) => m.interaction_metadata?.id === sent.id);
}

/** Every text the bot sent this member through this interaction (callback, edits, follow-ups). */
function textsSentFor(sent: SentInteraction): string[] {
  return sent.requests().map(textOf).filter((t) => t !== '');
}

describe('a request that ends with no image is the member’s business only', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: LIMITS_ENV, breaker: NO_BREAKER });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.segmind.reset());

  it('every image failed: the "thinking…" reply is deleted and the member told privately, in plain words, nothing charged', async () => {
    const member = snowflake();
    h.segmind.setDefault({ kind: 'error', status: 429 });
    const sent = sendImagine(h.discord, { prompt: 'two doomed owls', samples: 2 }, { userId: member });
    // deferral, then delete, then one ephemeral follow-up; the public reply never written to
    const text = await refusalAfterDeferral(sent);
    expect(text).toBe('❌ No image could be generated. The image service is busy — try again in a minute. Nothing was charged.');
    expect(await finished(h, sent)).toMatchObject({ outcome: 'failed', delivered: 0 });
    expect(publicMessagesOf(h, sent), 'nothing of the request is left in the channel').toEqual([]);
    expect(h.discord.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/channels/')), 'no channel post').toEqual([]);
    for (const line of textsSentFor(sent)) expect(line).not.toMatch(INTERNALS);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: h.discord.guildId });
  });

  it('a partial result keeps its public message, with a plain note of what failed and that it was not charged', async () => {
    const member = snowflake();
    h.segmind.respondWith((req) => ((req.body as { seed: number }).seed === 11 ? { kind: 'error', status: 500 } : { kind: 'image' }));
    const sent = sendImagine(h.discord, { prompt: 'three lanterns', samples: 3, seed: 10 }, { userId: member });
    const edit = await sent.waitForRequest(isResultEdit);
    expect(edit.files).toHaveLength(2);
    expect(textOf(edit).split('\n').at(-1)).toBe('⚠️ Image 2 of 3 (seed 11) failed, not charged: The image service had a problem — try again in a moment.');
    expect(textOf(edit)).not.toMatch(INTERNALS);
    await finished(h, sent);
    expect(sent.originalMessage()?.attachments, 'the result stays public').toHaveLength(2);
    expect(sent.followUps()).toEqual([]);
    await expectConsistentLedger(h.storage, { [member]: 2 }, { guildId: h.discord.guildId });
  });

  it('past the interaction token, the member gets a direct message; one who takes no DMs is mentioned in the channel', async () => {
    const [open, closed] = [snowflake(), snowflake()];
    h.discord.closeDirectMessages(closed);
    h.segmind.setDefault({ kind: 'error', status: 503 });
    const sixteenMinutesAgo = { createdAt: Date.now() - 16 * 60_000 };
    const toOpen = sendImagine(h.discord, { prompt: 'a late kite', seed: 3 }, { userId: open, ...sixteenMinutesAgo });
    await finished(h, toOpen);
    const dms = h.discord.directMessages(open);
    expect(dms.map((m) => m.content)).toEqual([
      `About your \`/imagine\` request in <#${h.discord.channelId}>:\n❌ No image could be generated. The image service had a problem — try again in a moment. Nothing was charged.`,
    ]);
    const channelPost = (r: RecordedRequest) => r.method === 'POST' && r.path === `/channels/${h.discord.channelId}/messages`;
    expect(h.discord.requests.filter(channelPost)).toEqual([]);

    const toClosed = sendImagine(h.discord, { prompt: 'another late kite', seed: 4 }, { userId: closed, ...sixteenMinutesAgo });
    await finished(h, toClosed);
    expect(h.discord.directMessages(closed)).toEqual([]);
    const posts = h.discord.requests.filter(channelPost);
    expect(posts).toHaveLength(1);
    const post = messageOf(posts[0]!.json) as { content?: string; allowed_mentions?: { users?: string[] } };
    expect(post.content).toBe(`<@${closed}> ❌ No image could be generated. The image service had a problem — try again in a moment. Nothing was charged.`);
    expect(post.allowed_mentions?.users).toEqual([closed]);
    await expectConsistentLedger(h.storage, { [open]: 0, [closed]: 0 }, { guildId: h.discord.guildId });
  });
});

describe('a cancelled request', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('is answered privately, and its queue message is gone from the channel', async () => {
    h = await startHarness({
      env: { ...LIMITS_ENV, SEGMIND_CONCURRENCY: '1' },
      progress: { firstEditDelayMs: 50, minIntervalMs: 200 },
    });
    const [alice, bob] = [snowflake(), snowflake()];
    h.segmind.pause();
    const running = sendImagine(h.discord, { prompt: 'running', seed: 1 }, { userId: alice });
    await h.segmind.waitForInFlight(1);
    const waiting = sendImagine(h.discord, { prompt: 'waiting', samples: 2, seed: 5 }, { userId: bob });
    await waiting.waitForRequest((r) => isEdit(r) && textOf(r).startsWith('⏳ Queued'));
    const queueMessage = waiting.originalMessage()!;

    const press = h.discord.sendButton({ customId: `cancel:${waiting.id}`, userId: bob, messageId: queueMessage.id });
    const answer = await waiting.waitForRequest((r) => r.method === 'POST' && textOf(r) !== '');
    expect(textOf(answer)).toBe('🚫 Cancelled. Nothing was charged.');
    expect((messageOf(answer.json).flags ?? 0) & EPHEMERAL, 'the answer is private').toBe(EPHEMERAL);
    const deletion = waiting.requests().find((r) => r.method === 'DELETE');
    expect(deletion?.status).toBe(204);
    expect(deletion!.seq, 'the public message deleted before the private answer').toBeLessThan(answer.seq);
    expect((await press.waitForCallback()).json).toMatchObject({ type: 6 });

    expect(waiting.originalMessage()).toBeUndefined();
    expect(h.discord.message(queueMessage.id), 'the queue message no longer exists').toBeUndefined();
    expect(publicMessagesOf(h, waiting)).toEqual([]);

    h.segmind.resume();
    await running.waitForRequest(isResultEdit);
    await finished(h, running);
    await expectConsistentLedger(h.storage, { [alice]: 1, [bob]: 0 }, { guildId: h.discord.guildId });
  });
});

interface SentRow {
  components: Array<{ type: number; custom_id?: string; label?: string; options?: Array<{ label: string; value: string }> }>;
}
interface SentEmbedFull {
  title?: string;
  description?: string;
  url?: string;
  footer?: { text: string };
  author?: { name: string };
  fields?: Array<{ name: string; value: string }>;
  image?: { url: string };
}

/** Discord's embed text limits: title 256, description 4096, 25 fields (name 256, value 1024), footer 2048, 6000 in all. */
function expectWithinEmbedLimits(embeds: SentEmbedFull[]): void {
  expect(embeds.length).toBeLessThanOrEqual(10);
  let total = 0;
  for (const embed of embeds) {
    expect((embed.title ?? '').length).toBeLessThanOrEqual(256);
    expect((embed.description ?? '').length).toBeLessThanOrEqual(4096);
    expect((embed.fields ?? []).length).toBeLessThanOrEqual(25);
    for (const field of embed.fields ?? []) {
      expect(field.name.length).toBeLessThanOrEqual(256);
      expect(field.value.length).toBeLessThanOrEqual(1024);
    }
    expect((embed.footer?.text ?? '').length).toBeLessThanOrEqual(2048);
    total +=
      (embed.title ?? '').length +
      (embed.description ?? '').length +
      (embed.footer?.text ?? '').length +
      (embed.author?.name ?? '').length +
      (embed.fields ?? []).reduce((sum, f) => sum + f.name.length + f.value.length, 0);
  }
  expect(total).toBeLessThanOrEqual(6000);
}

describe('the result message', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: LIMITS_ENV, breaker: NO_BREAKER });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('names the prompt and its author without a ping, one settings line, within Discord’s limits for the longest prompt and 4 images', async () => {
    const member = snowflake();
    // the longest prompt the option allows, every other character one markdown escaping doubles
    const prompt = 'a *b* _c_ ~d~ `e` |f| #'.repeat(200).slice(0, LIMITS.promptMaxLength).trim();
    const sent = sendImagine(
      h.discord,
      { prompt, samples: 4, seed: 1000, aspect_ratio: '16:9', steps: 28, guidance: 3.5, output_format: 'png', output_quality: 55, prompt_strength: 0.4 },
      { userId: member },
    );
    const edit = await sent.waitForRequest(isResultEdit);
    await finished(h, sent);
    const body = messageOf(edit.json) as { content?: string; embeds?: SentEmbedFull[]; allowed_mentions?: { parse?: string[]; users?: string[] } };
    const content = body.content ?? '';

    expect(content.length).toBeLessThanOrEqual(2000);
    const [first, settings, ...rest] = content.split('\n');
    // the prompt (escaped, shortened to fit) and its author, as a mention
    expect(first!.startsWith('**a \\*b\\* \\_c\\_ '), first).toBe(true);
    expect(first!.endsWith(`…** — <@${member}>`), first).toBe(true);
    expect(first!.length).toBeGreaterThan(1500);
    expect(settings).toMatch(/^seeds 1000–1003 · 16:9 · 28 steps · guidance 3\.5 · \d+\.\d s$/);
    expect(rest, 'nothing failed: no notes').toEqual([]);
    // the mention does not ping anyone
    expect(body.allowed_mentions).toEqual({ parse: [] });
    // the message Discord shows has exactly that content and the four images in a gallery
    expect(sent.originalMessage()?.content).toBe(content);
    expect(edit.files).toHaveLength(4);
    const embeds = body.embeds ?? [];
    expect(embeds.map((e) => e.image?.url)).toEqual(edit.files.map((f) => `attachment://${f.name}`));
    expect(new Set(embeds.map((e) => e.url)).size).toBe(1);
    expectWithinEmbedLimits(embeds);
    // the model named once; format, quality and prompt strength left to Details
    expect(JSON.stringify({ content, embeds }).match(/FLUX\.1 \[dev\]/g)).toHaveLength(1);
    expect(JSON.stringify({ content, embeds })).not.toMatch(/quality|strength|png \(|segmind/i);

    const rows = (messageOf(edit.json) as { components?: SentRow[] }).components ?? [];
    const components = rows.flatMap((row) => row.components);
    const idOf = (label: string) => components.find((c) => c.label === label)!.custom_id!;
    const menu = components.find((c) => c.type === 3)!;
    const messageId = sent.originalMessage()!.id;

    // Details: format, quality and prompt strength, privately, for free
    const details = h.discord.sendButton({ customId: idOf('Details'), messageId, userId: member });
    const detailsEdit = await details.waitForRequest(isEdit);
    for (const part of ['output_format: png', 'output_quality: 55', 'prompt_strength: 0.4']) expect(textOf(detailsEdit)).toContain(part);

    // the menu offers a remix of each image, and no "reproduce alone"
    expect(menu.options!.map((o) => o.label)).toEqual([1000, 1001, 1002, 1003].map((seed, i) => `✏️ Remix image ${i + 1} (seed ${seed})`));

    // the Remix forms say what they cost
    const remixAll = h.discord.sendButton({ customId: idOf('Remix'), messageId, userId: member });
    expect(((await remixAll.waitForCallback()).json as { type: number; data: { title: string } })).toMatchObject({ type: 9, data: { title: 'Remix · 4 images' } });
    const remixOne = h.discord.sendSelect({ customId: menu.custom_id!, values: [menu.options![1]!.value], messageId, userId: member });
    expect(((await remixOne.waitForCallback()).json as { data: { title: string } }).data.title).toBe('Remix · 1 image (seed 1001)');

    await expectConsistentLedger(h.storage, { [member]: 4 }, { guildId: h.discord.guildId });
  });

  it('a single image says "1 step"-style singulars and one seed', async () => {
    const member = snowflake();
    const sent = sendImagine(h.discord, { prompt: 'one quick fox', steps: 1, seed: 42 }, { userId: member });
    const edit = await sent.waitForRequest(isResultEdit);
    await finished(h, sent);
    expect(textOf(edit).split('\n')[1]).toMatch(/^seed 42 · 1:1 · 1 step · guidance 3\.5 · \d+\.\d s$/);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
  });
});

describe('/credits', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  async function giveBonus(harness: Harness, member: string, amount: number): Promise<void> {
    const sent = harness.discord.sendSlashCommand({
      name: 'imagine-admin',
      userId: snowflake(),
      permissions: '32',
      options: [
        {
          name: 'credits',
          type: ApplicationCommandOptionType.SubcommandGroup,
          options: [
            {
              name: 'give',
              type: ApplicationCommandOptionType.Subcommand,
              options: [
                { name: 'member', type: ApplicationCommandOptionType.User, value: member },
                { name: 'amount', type: ApplicationCommandOptionType.Integer, value: amount },
              ],
            },
          ],
        },
      ],
      resolved: { users: { [member]: { id: member, username: 'member', discriminator: '0', global_name: null, avatar: null } } },
    });
    expect(textOf(await sent.waitForRequest(isEdit))).toContain(`Gave <@${member}> ${amount} bonus credits`);
  }

  async function creditsText(harness: Harness, member: string): Promise<string[]> {
    const callback = await harness.discord.sendSlashCommand({ name: 'credits', userId: member }).waitForCallback();
    expect((messageOf(callback.json).flags ?? 0) & EPHEMERAL).toBe(EPHEMERAL);
    return (messageOf(callback.json).content ?? '').split('\n');
  }

  it('says how many images the member can still make today, counting bonus credits, held to the server’s budget when lower', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '3', DEFAULT_GUILD_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '0' } });
    const member = snowflake();
    expect((await creditsText(h, member))[1]).toBe('You can make **3 more images** today.');
    await giveBonus(h, member, 5);
    // today's 3 and the 5 bonus credits
    expect((await creditsText(h, member)).slice(1, 4)).toEqual([
      'You can make **8 more images** today.',
      expect.stringMatching(/^Today's allowance: \*\*3\*\* of 3 left — resets <t:\d+:R>$/),
      "Bonus: **5 credits** (granted by moderators, never expire, spent after today's allowance)",
    ]);

    const sent = sendImagine(h.discord, { prompt: 'four moths', samples: 4 }, { userId: member });
    await sent.waitForRequest(isResultEdit);
    await finished(h, sent);
    // 0 of today's left, 4 bonus left; the server has 6 of its 10 left
    expect((await creditsText(h, member))[1]).toBe('You can make **4 more images** today.');

    const other = snowflake();
    await giveBonus(h, other, 20);
    // 3 + 20 of their own, but the server has only 6 left
    expect((await creditsText(h, other))[1]).toBe("You can make **6 more images** today: that is what is left of this server's budget.");
    await expectConsistentLedger(h.storage, { [member]: 3, [other]: 0 }, { guildId: h.discord.guildId });
  });
});
