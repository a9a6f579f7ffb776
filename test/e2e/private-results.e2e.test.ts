import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationCommandOptionType, ChannelType, type APIInteractionDataResolved, type GuildMemberFlags } from 'discord.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { definition as adminDefinition } from '../../src/commands/imagine-admin/index.js';
import { definition as imagineDefinition } from '../../src/commands/imagine.js';
import { createLogger } from '../../src/logger.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { GuildSettingsRepository } from '../../src/services/usage/guild-settings.js';
import { FakeDiscord, snowflake, type RecordedRequest, type SentInteraction, type SlashCommandOption } from '../fakes/fake-discord.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { crashAllBotProcesses, startBotProcess, type BotProcess } from '../support/bot-process.js';
import { eventually, startHarness, TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger, readLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';

/**
 * Private results (issue 16): `/imagine private:true` where the server allows it. Only the member sees the waiting
 * message and the result; its buttons make private results too; once the interaction token is dead the result comes by
 * direct message (refunded when the member takes none); nothing of it ever reaches the channel or the generation log,
 * and moderators still see it in `/imagine-admin usage member:`.
 */

const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '100000', DEFAULT_COOLDOWN_SECONDS: '0' };
const MANAGE_SERVER = '32';
const EPHEMERAL = 64;
const GUILD = snowflake();
const GENERAL = snowflake();
const GEN_LOG = snowflake();
/** A server that keeps the default: private results not allowed. */
const STRICT_GUILD = snowflake();
const STRICT_GENERAL = snowflake();
const moderator = { userId: snowflake(), permissions: MANAGE_SERVER };

interface SentComponent {
  type: number;
  custom_id?: string;
  label?: string;
  options?: Array<{ label: string; value: string }>;
}
interface SentModal {
  custom_id: string;
}

const isOriginalEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
const isResultEdit = (r: RecordedRequest) => isOriginalEdit(r) && r.files.length > 0;
const isChannelPost = (channelId: string) => (r: RecordedRequest) => r.method === 'POST' && r.path === `/channels/${channelId}/messages`;
const componentsOf = (json: unknown) =>
  ((messageOf(json) as { components?: Array<{ components: SentComponent[] }> }).components ?? []).flatMap((row) => row.components);

interface PrivateResult {
  sent: SentInteraction;
  edit: RecordedRequest;
  messageId: string;
  /** custom_id by label ('Re-roll', …), and the menu's. */
  buttons: Record<string, string>;
  menu?: SentComponent;
  prompts: string[];
  seeds: number[];
}

/** `/imagine-admin <command>` by a moderator; resolves with the reply's text (never an error). */
async function adminCommand(h: Harness, where: { guildId: string; channelId: string }, command: string, values: Record<string, string | boolean>): Promise<string> {
  const path = command.split(' ');
  let level = adminDefinition.options as ReadonlyArray<{ name: string; type: number; options?: readonly unknown[] }>;
  for (const name of path) level = (level.find((o) => o.name === name)?.options ?? []) as typeof level;
  const leaf: SlashCommandOption[] = Object.entries(values).map(([name, value]) => {
    const type = level.find((o) => o.name === name)?.type;
    if (type === undefined) throw new Error(`/imagine-admin ${command} has no option ${name}`);
    return { name, type, value };
  });
  let options = leaf;
  for (const [i, name] of [...path].reverse().entries())
    options = [{ name, type: i === 0 ? ApplicationCommandOptionType.Subcommand : ApplicationCommandOptionType.SubcommandGroup, options }];
  const resolved: APIInteractionDataResolved = { users: {}, members: {}, channels: {} };
  for (const option of leaf) {
    const id = String(option.value);
    if (option.type === Number(ApplicationCommandOptionType.Channel)) resolved.channels![id] = { id, name: 'generations', type: ChannelType.GuildText, permissions: '0' };
    if (option.type !== Number(ApplicationCommandOptionType.User)) continue;
    resolved.users![id] = { id, username: `user${id.slice(-4)}`, discriminator: '0', global_name: null, avatar: null };
    resolved.members![id] = {
      roles: [],
      permissions: '0',
      joined_at: new Date().toISOString(),
      premium_since: null,
      flags: 0 as GuildMemberFlags,
      pending: false,
      nick: null,
      avatar: null,
      banner: null,
      communication_disabled_until: null,
    };
  }
  const sent = h.discord.sendSlashCommand({ name: 'imagine-admin', ...where, ...moderator, options, resolved });
  const callback = await sent.waitForCallback();
  const reply =
    (callback.json as { type: number }).type === 4 ? messageOf(callback.json) : messageOf((await sent.waitForRequest(isOriginalEdit)).json);
  expect(reply.content ?? '').not.toMatch(/^❌/);
  return reply.content ?? '';
}

describe('private results', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: NO_LIMITS,
      discord: {
        guilds: [
          { id: GUILD, channels: [{ id: GENERAL, name: 'general' }, { id: GEN_LOG, name: 'generations' }] },
          { id: STRICT_GUILD, channels: [{ id: STRICT_GENERAL, name: 'general' }] },
        ],
      },
    });
    await admin('settings set', { allow_private: true });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.segmind.reset());

  const admin = (command: string, values: Record<string, string | boolean>) => adminCommand(h, { guildId: GUILD, channelId: GENERAL }, command, values);

  function finished(sent: SentInteraction) {
    return eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === sent.id), `the end of job ${sent.id}`, 10_000);
  }

  async function settled(sent: SentInteraction): Promise<void> {
    await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), `job ${sent.id} to settle`);
  }

  /** Waits for a request deferred privately that ends with its images in that same private reply. */
  async function privateResult(sent: SentInteraction, segmindBefore: number): Promise<PrivateResult> {
    const callback = await sent.waitForCallback();
    expect(callback.json, 'a deferral').toMatchObject({ type: 5 });
    expect((messageOf(callback.json).flags ?? 0) & EPHEMERAL, 'the waiting message is private').toBe(EPHEMERAL);
    const edit = await sent.waitForRequest(isResultEdit);
    await settled(sent);
    const message = sent.originalMessage();
    if (!message) throw new Error('no private reply');
    expect((message.flags ?? 0) & EPHEMERAL, 'the result is private').toBe(EPHEMERAL);
    const components = componentsOf(edit.json);
    const bodies = h.segmind.requests.slice(segmindBefore).map((r) => r.body as { prompt: string; seed: number });
    const menu = components.find((c) => c.type === 3);
    return {
      sent,
      edit,
      messageId: message.id,
      buttons: Object.fromEntries(components.filter((c) => c.type === 2).map((c) => [c.label ?? '', c.custom_id ?? ''])),
      ...(menu ? { menu } : {}),
      prompts: bodies.map((b) => b.prompt),
      seeds: bodies.map((b) => b.seed),
    };
  }

  /** Nothing of this interaction can be seen by anyone else in the channel. */
  function expectNothingPublic(sent: SentInteraction): void {
    expect(h.discord.publicMessages(GENERAL).filter((m) => m.interaction_metadata?.id === sent.id)).toEqual([]);
  }

  const imagine = (options: Record<string, string | number | boolean>, userId: string, spec: { createdAt?: number } = {}) =>
    sendImagine(h.discord, { ...options, private: true }, { guildId: GUILD, channelId: GENERAL, userId, ...spec });

  it('where allowed: the waiting message and the result only the member sees, with Re-roll, Remix and Details (no Delete, Report or Share), charged as usual', async () => {
    const member = snowflake();
    const result = await privateResult(imagine({ prompt: 'a secret garden', seed: 7 }, member), h.segmind.requests.length);
    expect(result.edit.files.map((f) => f.name)).toEqual(['flux-7.webp']);
    expect(Object.keys(result.buttons)).toEqual(['Re-roll', 'Remix', 'Details']);
    expect(result.buttons['Re-roll']).toBe(`res:reroll:${result.sent.id}:p`);
    expect(result.buttons.Remix).toBe(`res:remix:${result.sent.id}:p`);
    expectNothingPublic(result.sent);
    expect(h.discord.requests.filter(isChannelPost(GENERAL)), 'nothing posted in the channel').toEqual([]);
    expect(h.discord.protocolViolations()).toEqual([]);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: GUILD });
  });

  it('where not allowed: refused privately, nothing generated and nothing charged', async () => {
    const member = snowflake();
    const sent = sendImagine(h.discord, { prompt: 'a secret garden', private: true }, { guildId: STRICT_GUILD, channelId: STRICT_GENERAL, userId: member });
    const callback = await sent.waitForCallback();
    expect((messageOf(callback.json).flags ?? 0) & EPHEMERAL, 'private from its first message').toBe(EPHEMERAL);
    const answer = await sent.waitForRequest(isOriginalEdit);
    expect(messageOf(answer.json).content).toBe(
      "❌ Private results are not allowed in this server (your `private` option or preference). Its moderators decide: `/imagine-admin settings set allow_private`. Nothing was charged.",
    );
    expect(h.segmind.requests).toEqual([]);
    expect(h.discord.publicMessages(STRICT_GENERAL)).toEqual([]);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: STRICT_GUILD });
  });

  it('a private request that ends with no image says so in its own private reply (nothing deleted, no follow-up), free', async () => {
    const member = snowflake();
    h.segmind.setDefault({ kind: 'error', status: 429 });
    const sent = imagine({ prompt: 'a quiet failure', seed: 3 }, member);
    expect(await finished(sent)).toMatchObject({ outcome: 'failed', delivered: 0 });
    const answer = sent.edits().at(-1);
    expect(messageOf(answer?.json).content).toMatch(/^❌ No image could be generated\. .* Nothing was charged\.$/);
    expect(sent.requests().filter((r) => r.method === 'DELETE'), 'the private reply is kept').toEqual([]);
    expect(sent.followUps()).toEqual([]);
    expect((sent.originalMessage()?.flags ?? 0) & EPHEMERAL).toBe(EPHEMERAL);
    expectNothingPublic(sent);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: GUILD });
  });

  it('Re-roll on a private result makes a new private result, charged to the member; the first one stays as it was', async () => {
    const member = snowflake();
    const first = await privateResult(imagine({ prompt: 'a hidden lake', seed: 21 }, member), h.segmind.requests.length);
    const before = h.segmind.requests.length;
    const reroll = h.discord.sendButton({ customId: first.buttons['Re-roll']!, messageId: first.messageId, guildId: GUILD, channelId: GENERAL, userId: member });
    const second = await privateResult(reroll, before);
    expect(second.prompts).toEqual(['a hidden lake']);
    expect(second.seeds[0]).not.toBe(21);
    expect(Object.keys(second.buttons)).toEqual(['Re-roll', 'Remix', 'Details']);
    expect(h.discord.message(first.messageId)?.attachments, 'the first result untouched').toHaveLength(1);
    expectNothingPublic(reroll);
    await expectConsistentLedger(h.storage, { [member]: 2 }, { guildId: GUILD });
  });

  it('Remix on a private result (the button, and the menu for one image) keeps the mark through its form and makes a private result', async () => {
    const member = snowflake();
    const where = { guildId: GUILD, channelId: GENERAL, userId: member };
    const first = await privateResult(imagine({ prompt: 'twin moons', samples: 2, seed: 40 }, member), h.segmind.requests.length);

    const pressed = h.discord.sendButton({ customId: first.buttons.Remix!, messageId: first.messageId, ...where });
    const modal = ((await pressed.waitForCallback()).json as { data: SentModal }).data;
    expect(modal.custom_id).toBe(`res:modal:${first.sent.id}:pn2`);
    let before = h.segmind.requests.length;
    const remixed = await privateResult(
      h.discord.sendModalSubmit({ customId: modal.custom_id, fields: { prompt: 'twin red moons', aspect_ratio: '1:1', steps: '25', guidance: '3.5', seed: '90' }, ...where }),
      before,
    );
    expect(remixed.prompts).toEqual(['twin red moons', 'twin red moons']);
    expect(remixed.seeds).toEqual([90, 91]);

    expect(first.menu?.custom_id).toBe(`res:pick:${first.sent.id}:p`);
    const picked = h.discord.sendSelect({ customId: first.menu!.custom_id!, values: ['remix-1'], messageId: first.messageId, ...where });
    const pickModal = ((await picked.waitForCallback()).json as { data: SentModal }).data;
    expect(pickModal.custom_id).toBe(`res:modal:${first.sent.id}:ps41`);
    before = h.segmind.requests.length;
    const one = await privateResult(
      h.discord.sendModalSubmit({ customId: pickModal.custom_id, fields: { prompt: 'twin moons', aspect_ratio: '1:1', steps: '25', guidance: '3.5', seed: '41' }, ...where }),
      before,
    );
    expect(one.seeds).toEqual([41]);
    expect(h.discord.publicMessages(GENERAL)).toEqual([]);
    await expectConsistentLedger(h.storage, { [member]: 5 }, { guildId: GUILD });
  });

  it('a private result that outlives the interaction token comes by direct message, without buttons, and never in the channel', async () => {
    const member = snowflake();
    const sent = imagine({ prompt: 'a letter in a bottle', seed: 5 }, member, { createdAt: Date.now() - 16 * 60_000 });
    expect(await finished(sent)).toMatchObject({ outcome: 'delivered', delivered: 1 });
    const dms = h.discord.directMessages(member);
    expect(dms).toHaveLength(1);
    expect(dms[0]!.content.startsWith(`🔒 Your private image from <#${GENERAL}> took a while, so here it is by direct message.\n**a letter in a bottle** — <@${member}>\n`)).toBe(true);
    expect(dms[0]!.attachments.map((a) => a.filename)).toEqual(['flux-5.webp']);
    expect(dms[0]!.components ?? []).toEqual([]);
    expect(h.discord.requests.filter(isChannelPost(GENERAL)), 'nothing posted in the channel').toEqual([]);
    expect(sent.edits(), 'the dead token was not used').toEqual([]);
    expect(h.discord.protocolViolations()).toEqual([]);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: GUILD });
  });

  it('a late private result for a member who takes no direct messages is refunded, and they are told in the channel without the prompt', async () => {
    const member = snowflake();
    h.discord.closeDirectMessages(member);
    const sent = imagine({ prompt: 'a very private matter', samples: 2, seed: 8 }, member, { createdAt: Date.now() - 16 * 60_000 });
    expect(await finished(sent)).toMatchObject({ outcome: 'delivery_failed', delivered: 0 });
    expect(h.discord.directMessages(member)).toEqual([]);
    const posts = h.discord.requests.filter(isChannelPost(GENERAL));
    expect(posts).toHaveLength(1);
    expect(posts[0]!.files, 'no image in the channel').toEqual([]);
    const post = messageOf(posts[0]!.json) as { content?: string; allowed_mentions?: { users?: string[] } };
    expect(post.content).toBe(
      `<@${member}> 🔒 Your private images were ready late, when only a direct message could bring them to you, and yours are closed to this bot. Nothing was charged.`,
    );
    expect(post.content).not.toContain('private matter');
    expect(post.allowed_mentions?.users).toEqual([member]);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: GUILD });
  });

  it('is never announced in the generation log, and moderators see it marked 🔒 in the member’s usage', async () => {
    const member = snowflake();
    await admin('settings set', { generation_log_channel: GEN_LOG });
    const logLines = () => h.discord.requests.filter(isChannelPost(GEN_LOG)).map((r) => messageOf(r.json).content ?? '');
    const linesBefore = logLines().length;

    await privateResult(imagine({ prompt: 'a diary page', seed: 11 }, member), h.segmind.requests.length);
    // a public result of the same member is announced: the log works, and is still the only line
    const open = sendImagine(h.discord, { prompt: 'a public square', seed: 12 }, { guildId: GUILD, channelId: GENERAL, userId: member });
    await open.waitForRequest(isResultEdit);
    await settled(open);
    const lines = await eventually(() => (logLines().length > linesBefore ? logLines().slice(linesBefore) : undefined), 'the generation log line');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('a public square');
    expect(logLines().join('\n')).not.toContain('a diary page');

    const usage = await admin('usage', { member });
    expect(usage).toMatch(/🔒 private · .* seed `11`\n> a diary page/);
    expect(usage).not.toMatch(/🔒 private · .* seed `12`/);
    await admin('settings reset', { setting: 'generation_log_channel' });
    await expectConsistentLedger(h.storage, { [member]: 2 }, { guildId: GUILD });
  });
});

describe("a styled result's buttons keep its style", () => {
  const TEMPLATE = '{prompt}, anime key visual, cel shading';
  const IMAGINE_OPTION_TYPES = new Map<string, number>(imagineDefinition.options.map((o) => [o.name, o.type]));
  let h: Harness;
  const where = () => ({ guildId: h.discord.guildId, channelId: h.discord.channelId });
  const admin = (command: string, values: Record<string, string | boolean>) => adminCommand(h, where(), command, values);
  beforeAll(async () => {
    h = await startHarness({ env: NO_LIMITS });
    await admin('styles add', { name: 'anime', template: TEMPLATE, aspect_ratio: '2:3' });
  });
  afterAll(async () => {
    await h?.stop();
  });

  interface PublicResult {
    sent: SentInteraction;
    edit: RecordedRequest;
    messageId: string;
    buttons: Record<string, string>;
    bodies: Array<Record<string, unknown> & { prompt: string; seed: number }>;
  }

  /** A public deferral that ends with images and buttons, once its credits are settled. */
  async function publicResult(sent: SentInteraction): Promise<PublicResult> {
    const before = h.segmind.requests.length;
    const callback = await sent.waitForCallback();
    expect(callback.json).toMatchObject({ type: 5 });
    const edit = await sent.waitForRequest(isResultEdit);
    await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), `job ${sent.id} to settle`);
    const buttons = Object.fromEntries(componentsOf(edit.json).filter((c) => c.type === 2).map((c) => [c.label ?? '', c.custom_id ?? '']));
    return { sent, edit, messageId: sent.originalMessage()!.id, buttons, bodies: h.segmind.requests.slice(before).map((r) => r.body as PublicResult['bodies'][number]) };
  }

  const footerOf = (edit: RecordedRequest) => (messageOf(edit.json).embeds?.[0] as { footer?: { text?: string } } | undefined)?.footer?.text;
  const press = (result: PublicResult, label: string, userId: string) =>
    h.discord.sendButton({ customId: result.buttons[label]!, messageId: result.messageId, userId, ...where() });

  /** Presses Remix and reads the form the bot opened. */
  async function remixForm(result: PublicResult, userId: string) {
    const callback = await press(result, 'Remix', userId).waitForCallback();
    expect(callback.json).toMatchObject({ type: 9 });
    return (callback.json as { data: SentModal & { components: Array<{ components: Array<{ custom_id: string; label: string; value: string }> }> } }).data;
  }

  /** Reads `/imagine name:value …` the way Discord would fill the options in. */
  function parseImagineCommand(line: string): Record<string, string | number> {
    const options: Record<string, string | number> = {};
    for (const part of line.slice('/imagine '.length).split(/ (?=[a-z_]+:)/)) {
      const [name, value] = [part.slice(0, part.indexOf(':')), part.slice(part.indexOf(':') + 1)];
      expect(IMAGINE_OPTION_TYPES.has(name), `/imagine has an option ${name}`).toBe(true);
      options[name] = IMAGINE_OPTION_TYPES.get(name) === Number(ApplicationCommandOptionType.String) ? value : Number(value);
    }
    return options;
  }

  it("Details shows the style, the member's prompt and the exact expanded prompt; its command makes the same image whatever the server's default style", async () => {
    const member = snowflake();
    const first = await publicResult(sendImagine(h.discord, { prompt: 'a fox', style: 'anime', seed: 7 }, { userId: member, ...where() }));
    expect(first.bodies).toEqual([expect.objectContaining({ prompt: 'a fox, anime key visual, cel shading', aspect_ratio: '2:3', seed: 7 })]);

    const details = press(first, 'Details', member);
    await details.waitForCallback();
    const text = messageOf((await details.waitForRequest(isOriginalEdit)).json).content ?? '';
    expect(text).toContain("style: anime\nmember's prompt: a fox\nexpanded prompt (sent to the model): a fox, anime key visual, cel shading\n");
    const command = /```(\/imagine [^`]*)```/.exec(text)?.[1] ?? '';
    expect(command).toMatch(/^\/imagine prompt:a fox, anime key visual, cel shading .* style:none$/);

    // a server default style would change a command without `style:none`
    await admin('styles add', { name: 'noir', template: '{prompt}, film noir' });
    await admin('styles default', { style: 'noir' });
    const reproduced = await publicResult(sendImagine(h.discord, parseImagineCommand(command), { userId: member, ...where() }));
    expect(reproduced.bodies).toStrictEqual(first.bodies);
    await admin('styles default', {});
    await expectConsistentLedger(h.storage, { [member]: 2 }, { guildId: h.discord.guildId });
  });

  it('Re-roll sends the same expanded prompt with a new seed, and its result names the style and shows the member’s prompt', async () => {
    const member = snowflake();
    const first = await publicResult(sendImagine(h.discord, { prompt: 'a fox', style: 'anime', seed: 5 }, { userId: member, ...where() }));
    const again = await publicResult(press(first, 'Re-roll', member));
    expect(again.bodies).toHaveLength(1);
    expect(again.bodies[0]!.seed).not.toBe(5);
    expect(again.bodies[0]).toStrictEqual({ ...first.bodies[0], seed: again.bodies[0]!.seed });
    expect(messageOf(again.edit.json).content?.startsWith(`**a fox** — <@${member}>`)).toBe(true);
    expect(footerOf(again.edit)).toContain('style: anime');
    await expectConsistentLedger(h.storage, { [member]: 2 }, { guildId: h.discord.guildId });
  });

  it('a remix whose expansion would pass 2000 characters is refused privately, for free', async () => {
    const member = snowflake();
    const first = await publicResult(sendImagine(h.discord, { prompt: 'a fox', style: 'anime', seed: 8 }, { userId: member, ...where() }));
    const modal = await remixForm(first, member);
    const before = h.segmind.requests.length;
    const submit = h.discord.sendModalSubmit({
      customId: modal.custom_id,
      fields: { prompt: 'y'.repeat(1990), aspect_ratio: '2:3', steps: '25', guidance: '3.5', seed: 'random' },
      userId: member,
      ...where(),
    });
    expect(await refusalAfterDeferral(submit)).toBe(
      '❌ With the style `anime` your prompt becomes 2021 characters, over the 2000 the image service takes. Shorten your prompt. Nothing was charged.',
    );
    expect(h.segmind.requests).toHaveLength(before);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
  });

  it("Remix pre-fills the member's prompt and expands the new one with the result's own template, even after the style changed", async () => {
    const member = snowflake();
    const first = await publicResult(sendImagine(h.discord, { prompt: 'a fox', style: 'anime', seed: 6 }, { userId: member, ...where() }));
    const modal = await remixForm(first, member);
    const prompt = modal.components.flatMap((row) => row.components).find((input) => input.custom_id === 'prompt');
    expect(prompt).toMatchObject({ value: 'a fox', label: 'Prompt (style anime is kept)' });

    await admin('styles add', { name: 'anime', template: '{prompt} in watercolour' });
    const remixed = await publicResult(
      h.discord.sendModalSubmit({
        customId: modal.custom_id,
        fields: { prompt: 'a wolf', aspect_ratio: '2:3', steps: '25', guidance: '3.5', seed: '9' },
        userId: member,
        ...where(),
      }),
    );
    expect(remixed.bodies).toEqual([expect.objectContaining({ prompt: 'a wolf, anime key visual, cel shading', seed: 9, aspect_ratio: '2:3' })]);
    expect(messageOf(remixed.edit.json).content?.startsWith(`**a wolf** — <@${member}>`)).toBe(true);
    expect(footerOf(remixed.edit)).toContain('style: anime');
    // and the remix's own Remix offers the member's new words
    const field = (await remixForm(remixed, member)).components.flatMap((row) => row.components).find((input) => input.custom_id === 'prompt');
    expect(field?.value).toBe('a wolf');
    await expectConsistentLedger(h.storage, { [member]: 2 }, { guildId: h.discord.guildId });
  });
});

describe('a private result when the bot process dies while posting it', { timeout: 60_000 }, () => {
  let discord: FakeDiscord;
  let segmind: FakeSegmind;
  let db: string;
  const quietLogger = createLogger({ level: 'silent', secrets: [] });
  const PATCH_ORIGINAL = { method: 'PATCH', path: /\/messages\/@original$/ };

  beforeEach(async () => {
    discord = await FakeDiscord.start();
    segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
    db = join(mkdtempSync(join(tmpdir(), 'flux-bot-private-')), 'bot.sqlite');
  });
  afterEach(async () => {
    await crashAllBotProcesses();
    await discord.stop();
    await segmind.stop();
  });

  /** Opens the bot's SQLite file while no bot has it open. */
  async function withStorage<T>(use: (storage: Storage) => Promise<T>): Promise<T> {
    const storage = await openStorage(`sqlite://${db}`, { logger: quietLogger });
    try {
      return await use(storage);
    } finally {
      await storage.close();
    }
  }

  async function startBot(): Promise<BotProcess> {
    const bot = startBotProcess({
      DISCORD_TOKEN: TEST_DISCORD_TOKEN,
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      DISCORD_API_URL: discord.apiUrl,
      SEGMIND_API_URL: segmind.url,
      DISCORD_GUILD_ID: discord.guildId,
      STORE_URL: `sqlite://${db}`,
      DEFAULT_COOLDOWN_SECONDS: '0',
      DEFAULT_DAILY_CREDITS: '10',
      LOG_LEVEL: 'info',
    });
    onTestFailed(() => console.log(`--- bot process ${bot.pid} ---\n${bot.output()}`));
    await bot.waitForLog('connected to Discord');
    return bot;
  }

  it('settles from what its private reply shows after a restart: charged once, posted once, never in the channel', async () => {
    const member = snowflake();
    await withStorage((storage) =>
      new GuildSettingsRepository(storage, quietLogger).update(discord.guildId, (settings) => Object.assign(settings, { allowPrivate: true })),
    );
    const first = await startBot();
    segmind.pause();
    const job = sendImagine(discord, { prompt: 'a sealed envelope', seed: 31, private: true }, { userId: member });
    await segmind.waitForInFlight(1);
    // Discord applies the upload to the private reply, but its answer never reaches the bot: journaled as 'delivering'.
    discord.setLatency(PATCH_ORIGINAL, 20_000);
    segmind.resume();
    await eventually(() => job.edits().some((r) => r.files.length > 0), 'the image upload to reach Discord', 10_000);
    await first.crash();
    discord.setLatency(PATCH_ORIGINAL, 0);
    const journaled = await withStorage((storage) => readLedger(storage, [member], { guildId: discord.guildId }));
    expect(journaled.journal).toEqual([{ id: job.id, state: 'delivering' }]);

    const second = await startBot();
    const settling = await second.waitForLog((l) => l.msg === 'settling a job interrupted while delivering' && l.jobId === job.id);
    expect(settling).toMatchObject({ delivered: 1 });
    await second.waitForLog((l) => l.msg === 'credits settled' && l.reservationId === job.id);
    second.terminate();
    await second.exited;

    // read back through the token, as the fake lets an ephemeral reply be read (Discord does while the token lives)
    expect(job.requests().filter((r) => r.method === 'GET' && r.path.endsWith('/messages/@original')).map((r) => r.status)).toEqual([200]);
    expect(job.edits().filter((r) => r.files.length > 0), 'posted once').toHaveLength(1);
    expect((job.originalMessage()?.flags ?? 0) & EPHEMERAL).toBe(EPHEMERAL);
    expect(job.originalMessage()?.attachments).toHaveLength(1);
    expect(discord.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/channels/')), 'nothing in a channel or DM').toEqual([]);
    await withStorage((storage) => expectConsistentLedger(storage, { [member]: 1 }, { guildId: discord.guildId }));
  });
});
