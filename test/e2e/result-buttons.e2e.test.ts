import { ApplicationCommandOptionType, ChannelType, type APIInteractionDataResolved, type GuildMemberFlags } from 'discord.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { definition as adminDefinition } from '../../src/commands/imagine-admin/index.js';
import { definition as imagineDefinition } from '../../src/commands/imagine.js';
import { Journal } from '../../src/services/generation/journal.js';
import { snowflake, type RecordedRequest, type SentInteraction, type SlashCommandOption } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness, type HarnessOptions } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';

/** These tests are about the buttons, not usage limits (except where a test sets its own). */
const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '100000', DEFAULT_COOLDOWN_SECONDS: '0' };
const MANAGE_SERVER = '32';
/** With random() = 0.5 every seed the bot picks itself is 2^31, so a re-roll's new seed is known in advance. */
const random = () => 0.5;
const CHOSEN_SEED = 2 ** 31;
const DAY_MS = 86_400_000;

const NOT_ANY_MORE = '❌ This button does not work any more.';
const NO_LONGER_KEPT =
  '❌ The settings of this result are no longer kept (results are kept for a limited time, or it was deleted). Use `/imagine` again.';

// ---------------------------------------------------------------------------------------------------------------------
// What the bot sent, read back from the recorded requests

interface SentComponent {
  type: number;
  custom_id?: string;
  label?: string;
  emoji?: { name?: string };
  value?: string;
  max_length?: number;
  placeholder?: string;
  options?: Array<{ label: string; value: string }>;
}
interface SentRow {
  type: number;
  components: SentComponent[];
}
interface SentModal {
  custom_id: string;
  title: string;
  components: SentRow[];
}
type SegmindBody = Record<string, unknown> & { prompt: string; seed: number; samples: number };

function rowsOf(json: unknown): SentRow[] {
  return (messageOf(json) as { components?: SentRow[] }).components ?? [];
}

interface Controls {
  reroll: string;
  remix: string;
  details: string;
  delete: string;
  report: string;
  pick?: { customId: string; options: Array<{ label: string; value: string }> };
}

/** The custom ids exactly as the bot put them on the message (never built by hand). */
function controlsOf(rows: SentRow[]): Controls {
  const components = rows.flatMap((row) => row.components);
  const button = (label: string) => {
    const id = components.find((c) => c.type === 2 && c.label === label)?.custom_id;
    if (id === undefined) throw new Error(`no ${label} button on the result`);
    return id;
  };
  const select = components.find((c) => c.type === 3);
  return {
    reroll: button('Re-roll'),
    remix: button('Remix'),
    details: button('Details'),
    delete: button('Delete'),
    report: button('Report'),
    ...(select?.custom_id !== undefined ? { pick: { customId: select.custom_id, options: select.options ?? [] } } : {}),
  };
}

/** The menu value whose label starts with `label` (e.g. 'Remix image 2'), as the bot offered it. */
function choice(controls: Controls, label: string): string {
  const option = controls.pick?.options.find((o) => o.label.includes(label));
  if (!option) throw new Error(`no menu option "${label}"`);
  return option.value;
}

interface Result {
  /** The interaction whose reply carries the result (/imagine, a press, or a modal submission). */
  sent: SentInteraction;
  edit: RecordedRequest;
  messageId: string;
  controls: Controls;
  /** The Segmind bodies of this result's images. */
  bodies: SegmindBody[];
  /** How many requests the interaction had made once delivered: any later one would touch the original. */
  requestsWhenDelivered: number;
}

const isResultEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0;

async function settled(h: Harness, reservationId: string): Promise<void> {
  await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === reservationId), `job ${reservationId} to settle`);
}

/** Waits for a deferred (public) reply that ends with images and buttons, and for the job to be settled. */
async function delivered(h: Harness, sent: SentInteraction, segmindBefore: number): Promise<Result> {
  const callback = await sent.waitForCallback();
  expect(callback.json).toMatchObject({ type: 5 });
  expect((messageOf(callback.json).flags ?? 0) & 64).toBe(0);
  const edit = await sent.waitForRequest(isResultEdit);
  await settled(h, sent.id);
  const message = sent.originalMessage();
  if (!message) throw new Error('no original message');
  return {
    sent,
    edit,
    messageId: message.id,
    controls: controlsOf(rowsOf(edit.json)),
    bodies: h.segmind.requests.slice(segmindBefore).map((r) => r.body as SegmindBody),
    requestsWhenDelivered: sent.requests().length,
  };
}

interface Actor {
  userId: string;
  permissions?: string;
  roles?: string[];
}

function imagine(h: Harness, options: Record<string, string | number>, actor: Actor): Promise<Result> {
  const before = h.segmind.requests.length;
  return delivered(h, sendImagine(h.discord, options, actor), before);
}

function press(h: Harness, result: Result, action: 'reroll' | 'remix' | 'details' | 'delete' | 'report', actor: Actor): SentInteraction {
  return h.discord.sendButton({ customId: result.controls[action], messageId: result.messageId, ...actor });
}

function pick(h: Harness, result: Result, label: string, actor: Actor): SentInteraction {
  if (!result.controls.pick) throw new Error('the result has no menu');
  return h.discord.sendSelect({
    customId: result.controls.pick.customId,
    values: [choice(result.controls, label)],
    messageId: result.messageId,
    ...actor,
  });
}

/** Holds every read of a stored result until `answer()`; `reads` records the keys asked. Restore with `reads.mockRestore()`. */
function holdResultReads(kv: Harness['storage']['kv']) {
  const get = kv.get.bind(kv);
  let answer!: () => void;
  const held = new Promise<void>((resolve) => (answer = resolve));
  const reads = vi.spyOn(kv, 'get').mockImplementation((async (key: string) => {
    if (key.startsWith('result:')) await held;
    return get(key);
  }) as typeof kv.get);
  return { reads, answer };
}

/** The private answer of a refused or informational press: a type 4 callback with the ephemeral flag. */
async function ephemeral(sent: SentInteraction): Promise<string> {
  const callback = await sent.waitForCallback();
  expect(callback.status).toBe(204);
  expect(callback.json).toMatchObject({ type: 4 });
  const message = messageOf(callback.json);
  expect((message.flags ?? 0) & 64).toBe(64);
  return message.content ?? '';
}

/** A private answer that may also come as an ephemeral deferral followed by an edit (for slower work such as Delete). */
async function privateAnswer(sent: SentInteraction): Promise<string> {
  const callback = await sent.waitForCallback(6_000);
  expect(callback.status).toBe(204);
  expect((messageOf(callback.json).flags ?? 0) & 64).toBe(64);
  if ((callback.json as { type: number }).type === 4) return messageOf(callback.json).content ?? '';
  expect(callback.json).toMatchObject({ type: 5 });
  const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'), 6_000);
  return messageOf(edit.json).content ?? '';
}

async function modalOf(sent: SentInteraction): Promise<SentModal> {
  const callback = await sent.waitForCallback();
  expect(callback.status).toBe(204);
  expect(callback.json).toMatchObject({ type: 9 });
  return (callback.json as { data: SentModal }).data;
}

function modalFields(modal: SentModal): Record<string, string> {
  return Object.fromEntries(
    modal.components.flatMap((row) => row.components).map((input) => [input.custom_id ?? '', input.value ?? '']),
  );
}

/** The original result was never edited nor deleted after it was delivered (a new result is a new message). */
function expectUntouched(h: Harness, result: Result): void {
  expect(result.sent.requests()).toHaveLength(result.requestsWhenDelivered);
  expect(h.discord.requests.filter((r) => r.path.endsWith(`/messages/${result.messageId}`) && r.method !== 'GET')).toEqual([]);
  const message = h.discord.message(result.messageId);
  expect(message?.attachments).toHaveLength(result.edit.files.length);
  expect(rowsOf(message)).toEqual(rowsOf(result.edit.json));
}

/** Like `eventually`, for an asynchronous check (storage reads). No fixed sleeps: polls every few ms. */
async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function usedToday(h: Harness, userId: string): Promise<number> {
  return (await h.storage.quota.usage(h.discord.guildId, userId, Date.now())).usedToday;
}

const user = (): Actor => ({ userId: snowflake() });

// ---------------------------------------------------------------------------------------------------------------------
// /imagine-admin, to set the rules a press must obey

interface DefinedOption {
  name: string;
  type: number;
  options?: readonly DefinedOption[];
}

async function admin(h: Harness, command: string, values: Record<string, string>, moderator: Actor): Promise<string> {
  const path = command.split(' ');
  let level = adminDefinition.options as readonly DefinedOption[];
  for (const name of path) level = level.find((o) => o.name === name)?.options ?? [];
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
    if (option.type === Number(ApplicationCommandOptionType.Channel))
      resolved.channels![id] = { id, name: 'art', type: ChannelType.GuildText, permissions: '0' };
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
  const sent = h.discord.sendSlashCommand({ name: 'imagine-admin', ...moderator, options, resolved });
  const callback = await sent.waitForCallback();
  const reply =
    (callback.json as { type: number }).type === 4
      ? messageOf(callback.json)
      : messageOf((await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'))).json);
  expect(reply.content ?? '').not.toMatch(/^❌/);
  return reply.content ?? '';
}

// ---------------------------------------------------------------------------------------------------------------------

const IMAGINE_OPTION_TYPES = new Map<string, number>(imagineDefinition.options.map((o) => [o.name, o.type]));

/** Reads `/imagine name:value …` the way Discord would fill the options in. */
function parseImagineCommand(line: string): Record<string, string | number> {
  expect(line.startsWith('/imagine ')).toBe(true);
  const options: Record<string, string | number> = {};
  for (const part of line.slice('/imagine '.length).split(/ (?=[a-z_]+:)/)) {
    const colon = part.indexOf(':');
    const name = part.slice(0, colon);
    const value = part.slice(colon + 1);
    expect(IMAGINE_OPTION_TYPES.has(name)).toBe(true);
    options[name] = IMAGINE_OPTION_TYPES.get(name) === Number(ApplicationCommandOptionType.String) ? value : Number(value);
  }
  return options;
}

describe('the buttons under a delivered result', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: NO_LIMITS, random });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.segmind.reset());

  it('puts Re-roll, Remix, Details, Delete and Report under one image, with short custom ids and no menu', async () => {
    const result = await imagine(h, { prompt: 'a red fox in the snow', seed: 42 }, user());
    const rows = rowsOf(result.edit.json);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.components.map((c) => [c.type, c.emoji?.name, c.label])).toEqual([
      [2, '🔁', 'Re-roll'],
      [2, '✏️', 'Remix'],
      [2, '🔍', 'Details'],
      [2, '🗑️', 'Delete'],
      [2, '🚩', 'Report'],
    ]);
    const ids = rows[0]!.components.map((c) => c.custom_id ?? '');
    expect(new Set(ids).size).toBe(5);
    for (const id of ids) {
      expect(id.length).toBeLessThanOrEqual(100);
      expect(id).toMatch(/^res:[a-z]+:\d+$/);
      expect(id.endsWith(`:${result.sent.id}`)).toBe(true); // only a short id: the parameters live in storage
    }
    expect(result.controls.pick).toBeUndefined();
  });

  it('adds a menu with a remix choice for each image when there are several, and no reproduce choice', async () => {
    const result = await imagine(h, { prompt: 'three owls', samples: 3, seed: 500 }, user());
    const rows = rowsOf(result.edit.json);
    expect(rows).toHaveLength(2);
    expect(rows[0]!.components).toHaveLength(5);
    expect(rows[1]!.components).toHaveLength(1);
    const menu = rows[1]!.components[0]!;
    expect(menu.type).toBe(3);
    expect(menu.custom_id!.length).toBeLessThanOrEqual(100);
    expect(menu.options!.map((o) => o.value)).toEqual(['remix-0', 'remix-1', 'remix-2']);
    for (const [i, seed] of [500, 501, 502].entries()) expect(menu.options![i]!.label).toBe(`✏️ Remix image ${i + 1} (seed ${seed})`);
    expect(JSON.stringify(menu)).not.toMatch(/reproduce|repro-/i);
    for (const option of menu.options!) expect(option.label.length).toBeLessThanOrEqual(100);
  });

  it('Re-roll: a new deferred reply with the same parameters and a new seed; the original is never touched', async () => {
    const owner = user();
    const result = await imagine(
      h,
      { prompt: 'a lighthouse at dusk', aspect_ratio: '16:9', guidance: 5, steps: 30, seed: 42, output_format: 'jpg', output_quality: 65, prompt_strength: 0.35 },
      owner,
    );
    expect(result.bodies).toHaveLength(1);
    const before = h.segmind.requests.length;
    const reroll = press(h, result, 'reroll', owner);
    const again = await delivered(h, reroll, before);

    expect(again.bodies).toStrictEqual([{ ...result.bodies[0], seed: CHOSEN_SEED }]);
    expect(again.edit.files.map((f) => f.name)).toEqual([`flux-${CHOSEN_SEED}.jpg`]);
    // a new message, answering the press on the original, with buttons of its own
    expect(again.messageId).not.toBe(result.messageId);
    expect(reroll.originalMessage()?.interaction_metadata).toMatchObject({ interacted_message_id: result.messageId });
    expect(again.controls.reroll.endsWith(`:${reroll.id}`)).toBe(true);
    expectUntouched(h, result);
  });

  it('Re-roll by another member is charged to that member, not to the one who asked', async () => {
    const owner = user();
    const other = user();
    const result = await imagine(h, { prompt: 'a blue heron', seed: 7 }, owner);
    expect(await usedToday(h, owner.userId)).toBe(1);
    expect(await usedToday(h, other.userId)).toBe(0);

    const again = await delivered(h, press(h, result, 'reroll', other), h.segmind.requests.length);
    expect(again.bodies).toStrictEqual([{ ...result.bodies[0], seed: CHOSEN_SEED }]);
    expect(await usedToday(h, other.userId)).toBe(1);
    expect(await usedToday(h, owner.userId)).toBe(1);
    expectUntouched(h, result);
  });

  it('Details: a private reply with every parameter, each seed, and a command that reproduces each image', async () => {
    const owner = user();
    const viewer = user();
    const result = await imagine(
      h,
      { prompt: 'two owls on a branch', aspect_ratio: '2:3', guidance: 4.5, steps: 20, samples: 2, seed: 500, output_format: 'webp', output_quality: 70, prompt_strength: 0.6 },
      owner,
    );
    const segmindBefore = h.segmind.requests.length;
    const text = await privateAnswer(press(h, result, 'details', viewer));

    expect(text).toContain('prompt: two owls on a branch');
    for (const part of ['aspect_ratio: 2:3', 'guidance: 4.5', 'steps: 20', 'samples: 2', 'output_format: webp', 'output_quality: 70', 'prompt_strength: 0.6'])
      expect(text).toContain(part);
    expect(text).toContain('`500`');
    expect(text).toContain('`501`');
    const commands = [...text.matchAll(/```(\/imagine [^`]*)```/g)].map((m) => m[1]!);
    expect(commands).toHaveLength(2);
    const parsed = commands.map(parseImagineCommand);
    const bodyOf = (seed: number) => result.bodies.find((b) => b.seed === seed);
    // `style:none`: neither a channel's default style nor a preference changes what the command makes
    expect(parsed[0]).toStrictEqual({ ...bodyOf(500), samples: 1, style: 'none' });
    expect(parsed[1]).toStrictEqual({ ...bodyOf(501), samples: 1, style: 'none' });
    // free, and nothing generated
    expect(h.segmind.requests).toHaveLength(segmindBefore);
    expect(await usedToday(h, viewer.userId)).toBe(0);

    // typed into Discord, the command of image 2 asks Segmind for exactly that image
    const reproduced = await delivered(h, sendImagine(h.discord, parsed[1]!, viewer), segmindBefore);
    expect(reproduced.bodies).toStrictEqual([bodyOf(501)]);
    expectUntouched(h, result);
  });

  it('Details keeps the reproducing command exact for a long prompt that fits in the reply', async () => {
    const prompt = Array.from({ length: 50 }, (_, i) => `detail${i}`).join(' ').padEnd(500, 'x'); // a 500-character FLUX prompt
    const result = await imagine(h, { prompt, seed: 77, steps: 8 }, user());
    const text = await privateAnswer(press(h, result, 'details', user()));
    expect(text.length).toBeLessThanOrEqual(2000);
    const commands = [...text.matchAll(/```(\/imagine [^`]*)```/g)].map((m) => m[1]!);
    expect(commands).toHaveLength(1);
    expect(parseImagineCommand(commands[0]!)).toStrictEqual({ ...result.bodies[0], samples: 1, style: 'none' });
  });

  it("Details still shows every parameter and every image's seed for the longest prompt and four images", async () => {
    const prompt = Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ').padEnd(2000, 'z'); // the longest prompt /imagine takes
    const result = await imagine(h, { prompt, samples: 4, seed: 1234 }, user());
    const sent = press(h, result, 'details', user());
    const text = await privateAnswer(sent);
    expect(text.length).toBeLessThanOrEqual(2000);
    for (const part of ['aspect_ratio: 1:1', 'steps: 25', 'samples: 4', 'output_format: webp', 'prompt_strength: 0.8'])
      expect(text).toContain(part);
    for (const seed of [1234, 1235, 1236, 1237]) expect(text).toContain(`\`${seed}\``);
    // each image's exact command, inline or (when it cannot fit in a message) in an attached text file
    const answer = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    const attached = answer.files.map((f) => f.bytes.toString('utf8')).join('\n');
    const commands = [...`${text}\n${attached}`.matchAll(/(\/imagine prompt:[^`\n]*)/g)].map((m) => parseImagineCommand(m[1]!));
    for (const body of result.bodies) expect(commands).toContainEqual({ ...body, samples: 1, style: 'none' });
  });

  it.each(['actionRow', 'label'] as const)(
    'Remix opens a pre-filled modal; its submission (%s layout) with an edited prompt becomes a new result',
    async (layout) => {
      const owner = user();
      const result = await imagine(h, { prompt: 'a castle on a hill', aspect_ratio: '16:9', steps: 30, guidance: 5, seed: 42 }, owner);
      const segmindBefore = h.segmind.requests.length;
      const modal = await modalOf(press(h, result, 'remix', owner));
      expect(modal.custom_id.length).toBeLessThanOrEqual(100);
      expect(modalFields(modal)).toEqual({ prompt: 'a castle on a hill', aspect_ratio: '16:9', steps: '30', guidance: '5', seed: 'random' });
      expect(h.segmind.requests).toHaveLength(segmindBefore); // opening the modal costs nothing

      const submit = h.discord.sendModalSubmit({
        customId: modal.custom_id,
        fields: { ...modalFields(modal), prompt: 'a castle on a hill at night' },
        layout,
        ...owner,
      });
      const remixed = await delivered(h, submit, segmindBefore);
      expect(remixed.bodies).toStrictEqual([{ ...result.bodies[0], prompt: 'a castle on a hill at night', seed: CHOSEN_SEED }]);
      expect(remixed.messageId).not.toBe(result.messageId);
      expect(await usedToday(h, owner.userId)).toBe(2);
      expectUntouched(h, result);
    },
  );

  it('shows remix modals Discord accepts: title and labels ≤ 45 characters, custom ids ≤ 100, values within max_length', async () => {
    const result = await imagine(h, { prompt: 'a quiet harbour', samples: 2, seed: 4_294_967_294 }, user());
    const modals = [await modalOf(press(h, result, 'remix', user())), await modalOf(pick(h, result, 'Remix image 2', user()))];
    for (const modal of modals) {
      expect(modal.title.length).toBeLessThanOrEqual(45);
      expect(modal.custom_id.length).toBeLessThanOrEqual(100);
      expect(modal.components.length).toBeLessThanOrEqual(5);
      for (const input of modal.components.flatMap((row) => row.components)) {
        expect(input.label!.length, `label of "${input.custom_id}": ${input.label}`).toBeLessThanOrEqual(45);
        expect(input.custom_id!.length).toBeLessThanOrEqual(100);
        expect(input.max_length).toBeLessThanOrEqual(4000);
        expect((input.value ?? '').length).toBeLessThanOrEqual(input.max_length ?? 4000);
      }
    }
  });

  it.each([
    ['steps', '80', '`steps`: must be between 1 and 50'],
    ['aspect_ratio', '4:3', '`aspect_ratio`: must be one of'],
    ['seed', 'abc', '`seed`: must be a number'],
    ['prompt', '   ', '`prompt`: is empty'],
  ])('a remix with %s "%s" is explained privately and costs nothing', async (field, value, text) => {
    const owner = user();
    const result = await imagine(h, { prompt: 'a windmill', seed: 3 }, owner);
    const segmindBefore = h.segmind.requests.length;
    const modal = await modalOf(press(h, result, 'remix', owner));
    const submit = h.discord.sendModalSubmit({ customId: modal.custom_id, fields: { ...modalFields(modal), [field]: value }, ...owner });
    const reply = await ephemeral(submit);
    expect(reply).toContain('Some fields are not valid');
    expect(reply).toContain(text);
    expect(h.segmind.requests).toHaveLength(segmindBefore);
    expect(await usedToday(h, owner.userId)).toBe(1);
    expect(h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === submit.id)).toBe(false);
    expectUntouched(h, result);
  });

  it('an older result\'s "Reproduce image N alone" choice says it is gone and points to Remix, for free', async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'three foxes', samples: 3, seed: 700, steps: 12 }, owner);
    const segmindBefore = h.segmind.requests.length;
    // what the menu of a result posted before the change still sends
    const old = h.discord.sendSelect({ customId: result.controls.pick!.customId, values: ['repro-1'], messageId: result.messageId, ...owner });
    expect(await ephemeral(old)).toBe('❌ Reproducing one image alone is no longer available. Pick ✏️ Remix for that image instead: it keeps its seed.');
    expect(h.segmind.requests).toHaveLength(segmindBefore);
    expect(await usedToday(h, owner.userId)).toBe(3);
    expectUntouched(h, result);
  });

  it("the menu opens a remix modal holding the chosen image's seed, and the remix keeps it", async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'two lanterns', samples: 2, seed: 800 }, owner);
    const segmindBefore = h.segmind.requests.length;
    const modal = await modalOf(pick(h, result, 'Remix image 2', owner));
    expect(modalFields(modal)).toMatchObject({ prompt: 'two lanterns', seed: '801' });
    expect(modal.title).toContain('801');
    const submit = h.discord.sendModalSubmit({ customId: modal.custom_id, fields: { ...modalFields(modal), prompt: 'two paper lanterns' }, ...owner });
    const remixed = await delivered(h, submit, segmindBefore);
    expect(remixed.bodies).toStrictEqual([{ ...result.bodies.find((b) => b.seed === 801), prompt: 'two paper lanterns' }]);
    expectUntouched(h, result);
  });

  it('Delete by the member who asked removes the message and forgets the result', async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'a paper boat', seed: 11 }, owner);
    const text = await privateAnswer(press(h, result, 'delete', owner));
    expect(text).toBe('🗑️ Deleted.');
    const deletion = h.discord.requests.filter((r) => r.method === 'DELETE' && r.path === `/channels/${h.discord.channelId}/messages/${result.messageId}`);
    expect(deletion.map((r) => r.status)).toEqual([204]);
    expect(h.discord.message(result.messageId)).toBeUndefined();
    expect(await h.storage.kv.get(`result:${result.sent.id}`)).toBeUndefined();
    // a copy of the button somewhere (say, a client that had not refreshed) answers clearly
    expect(await refusalAfterDeferral(h.discord.sendButton({ customId: result.controls.reroll, ...owner }))).toBe(NO_LONGER_KEPT);
    expect(h.segmind.requests).toHaveLength(1);
  });

  it('Delete by another member is refused politely and deletes nothing', async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'a paper crane', seed: 12 }, owner);
    const text = await privateAnswer(press(h, result, 'delete', user()));
    expect(text).toBe('❌ Only the member who asked for these images, or a moderator, can delete them.');
    expect(h.discord.requests.filter((r) => r.method === 'DELETE' && r.path.endsWith(`/messages/${result.messageId}`))).toEqual([]);
    expect(h.discord.message(result.messageId)).toBeDefined();
    expect(await h.storage.kv.get(`result:${result.sent.id}`)).toBeDefined();
    expectUntouched(h, result);
  });

  it('Delete by a moderator (Manage Server) is allowed', async () => {
    const result = await imagine(h, { prompt: 'a rude doodle', seed: 13 }, user());
    const text = await privateAnswer(press(h, result, 'delete', { userId: snowflake(), permissions: MANAGE_SERVER }));
    expect(text).toBe('🗑️ Deleted.');
    expect(h.discord.requests.filter((r) => r.method === 'DELETE').map((r) => [r.path, r.status])).toContainEqual([
      `/channels/${h.discord.channelId}/messages/${result.messageId}`,
      204,
    ]);
    expect(h.discord.message(result.messageId)).toBeUndefined();
  });

  it('acknowledges Delete within 3 s even when Discord is slow to delete the message', async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'a slow goodbye', seed: 14 }, owner);
    const route = { method: 'DELETE', path: /^\/channels\/\d+\/messages\/\d+$/ };
    h.discord.setLatency(route, 3_200); // a busy rate-limit bucket looks the same to the bot
    try {
      const sentAt = Date.now();
      const sent = press(h, result, 'delete', owner);
      const callback = await sent.waitForCallback(6_000);
      expect(callback.at - sentAt).toBeLessThan(3_000);
      expect(await privateAnswer(sent)).toBe('🗑️ Deleted.');
      expect(h.discord.message(result.messageId)).toBeUndefined();
    } finally {
      h.discord.setLatency(route, 0);
    }
  });

  it('a press long after the 15-minute interaction token still works', async () => {
    const owner = user();
    // an /imagine sent 20 minutes ago: its token is dead, so the result was posted as a plain channel message
    const sent = sendImagine(h.discord, { prompt: 'an old result', seed: 9 }, { ...owner, createdAt: Date.now() - 20 * 60_000 });
    expect((await sent.waitForCallback()).json).toMatchObject({ type: 5 });
    const post = await h.discord.waitForRequest(
      (r) => r.method === 'POST' && r.path === `/channels/${h.discord.channelId}/messages` && r.files.length > 0,
    );
    await settled(h, sent.id);
    const old: Result = {
      sent,
      edit: post,
      messageId: (post.response as { id: string }).id,
      controls: controlsOf(rowsOf(post.json)),
      bodies: h.segmind.requests.map((r) => r.body as SegmindBody),
      requestsWhenDelivered: sent.requests().length,
    };
    const again = await delivered(h, press(h, old, 'reroll', owner), 1);
    expect(again.bodies).toStrictEqual([{ ...old.bodies[0], seed: CHOSEN_SEED }]);
    expectUntouched(h, old);
  });

  it.each([
    ['garbage', NOT_ANY_MORE],
    ['res:reroll:abc', NOT_ANY_MORE],
    ['res:nope:123', NOT_ANY_MORE],
    ['res:reroll:1:2:3', NOT_ANY_MORE],
    [`res:reroll:${'9'.repeat(30)}`, NOT_ANY_MORE],
    ['res:details:123456789012345678:x', NO_LONGER_KEPT],
  ])('a forged or unknown custom id %j is answered privately, never left unanswered', async (customId, text) => {
    const sent = h.discord.sendButton({ customId, ...user() });
    expect(await privateAnswer(sent)).toBe(text);
    expect(h.segmind.requests).toHaveLength(0);
  });

  it('a Re-roll is acknowledged before its result is read back from storage', async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'a patient heron', seed: 61 }, owner);
    const { reads, answer } = holdResultReads(h.storage.kv);
    try {
      const before = h.segmind.requests.length;
      const sent = press(h, result, 'reroll', owner);
      expect((await sent.waitForCallback()).json).toMatchObject({ type: 5 });
      await eventually(() => reads.mock.calls.some(([key]) => String(key) === `result:${result.sent.id}`), 'the result to be read back');
      expect(sent.requests()).toHaveLength(1);
      expect(h.segmind.requests).toHaveLength(before);
      answer();
      const again = await delivered(h, sent, before);
      expect(again.bodies).toHaveLength(1);
      expect(again.bodies[0]).toMatchObject({ prompt: 'a patient heron' });
    } finally {
      reads.mockRestore();
    }
  });

  it('Details and Delete are acknowledged privately before the result is read back; Remix answers within 3 s when storage hangs', async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'a slow archive', seed: 71 }, owner);
    const { reads, answer } = holdResultReads(h.storage.kv);
    try {
      const details = press(h, result, 'details', owner);
      const deletion = press(h, result, 'delete', user());
      for (const sent of [details, deletion]) {
        const callback = await sent.waitForCallback();
        expect(callback.json).toMatchObject({ type: 5, data: { flags: 64 } });
      }
      const sentAt = Date.now();
      const remix = press(h, result, 'remix', owner);
      const callback = await remix.waitForCallback(5_000);
      expect(callback.at - sentAt).toBeLessThan(3_000);
      expect(callback.json).toMatchObject({ type: 4, data: { flags: 64 } });
      expect(messageOf(callback.json).content).toContain('cannot be read right now');
      answer();
      expect(await privateAnswer(details)).toContain('`71`');
      expect(await privateAnswer(deletion)).toContain('Only the member who asked');
      expectUntouched(h, result);
    } finally {
      reads.mockRestore();
    }
  });

  it('a Re-roll of an unknown result is acknowledged first, then answered privately in place of the "thinking…" message', async () => {
    const sent = h.discord.sendButton({ customId: 'res:reroll:123456789012345678', ...user() });
    expect(await refusalAfterDeferral(sent)).toBe(NO_LONGER_KEPT);
    expect(h.segmind.requests).toHaveLength(0);
  });

  it('controls used where they do not belong are answered cleanly', async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'two moths', samples: 2, seed: 40 }, owner);
    const id = result.sent.id;
    const answers = [
      // the menu's and the modal's ids pressed as buttons
      h.discord.sendButton({ customId: result.controls.pick!.customId, messageId: result.messageId, ...owner }),
      h.discord.sendButton({ customId: `res:modal:${id}:n2`, messageId: result.messageId, ...owner }),
      // menu values the menu never offered
      h.discord.sendSelect({ customId: result.controls.pick!.customId, values: ['steal-0'], messageId: result.messageId, ...owner }),
      h.discord.sendSelect({ customId: result.controls.pick!.customId, values: ['remix-x'], messageId: result.messageId, ...owner }),
      // remixes submitted for a forged id, or for one that was never a modal's
      h.discord.sendModalSubmit({ customId: 'res:modal:abc', fields: { prompt: 'x' }, ...owner }),
      h.discord.sendModalSubmit({ customId: `res:nope:${id}`, fields: { prompt: 'x' }, ...owner }),
      h.discord.sendModalSubmit({ customId: result.controls.delete, fields: { prompt: 'x' }, ...owner }),
      // the Report button's id on a menu or a form
      h.discord.sendSelect({ customId: result.controls.report, values: ['remix-0'], messageId: result.messageId, ...owner }),
      h.discord.sendModalSubmit({ customId: result.controls.report, fields: { prompt: 'x' }, ...owner }),
    ];
    for (const [i, sent] of answers.entries()) expect(await ephemeral(sent), `answer #${i}`).toBe(NOT_ANY_MORE);
    expect(h.segmind.requests).toHaveLength(2);
    expectUntouched(h, result);
  });

  it('acknowledges every press at once, even while Segmind is stuck with work queued', async () => {
    const owner = user();
    const presser = user();
    const result = await imagine(h, { prompt: 'a busy street', samples: 2, seed: 60 }, owner);
    h.segmind.pause();
    const queued = [
      sendImagine(h.discord, { prompt: 'queue filler one', samples: 4 }, user()),
      sendImagine(h.discord, { prompt: 'queue filler two', samples: 4 }, user()),
    ];
    await h.segmind.waitForInFlight(4); // SEGMIND_CONCURRENCY: four held, four more waiting in the queue
    const segmindBefore = (await h.segmind.waitForRequests(result.bodies.length + 4)).length;

    const sentAt = Date.now();
    const presses = {
      reroll: press(h, result, 'reroll', presser),
      details: press(h, result, 'details', presser),
      remix: press(h, result, 'remix', presser),
      delete: press(h, result, 'delete', presser),
      pick: pick(h, result, 'Remix image 1', presser),
    };
    const callbacks = await Promise.all(Object.values(presses).map((p) => p.waitForCallback()));
    for (const callback of callbacks) {
      expect(callback.status).toBe(204); // the fake answers 10062 past Discord's 3 s
      expect(callback.at - sentAt).toBeLessThan(3_000);
    }
    expect(callbacks.map((c) => (c.json as { type: number }).type)).toEqual([5, 5, 9, 5, 9]);
    // all answered while Segmind still held every call
    expect(h.segmind.inFlight()).toBe(4);
    expect(h.segmind.requests).toHaveLength(segmindBefore);
    // the presses' jobs wait in the same journal (and queue) as /imagine's, charged to the presser
    const journaled = await until(async () => {
      // A fresh reader each time: a Journal keeps the index it loaded (its process is the only writer).
      const entries = await new Journal(h.storage, h.config.INSTANCE_ID).list();
      return entries.some((e) => e.id === presses.reroll.id) ? entries : undefined;
    }, 'the press to be journaled');
    expect(journaled.filter((e) => e.id === presses.reroll.id).map((e) => [e.userId, e.params.samples])).toEqual([[presser.userId, 2]]);

    h.segmind.resume();
    for (const sent of [...queued, presses.reroll]) await settled(h, sent.id);
    expect((await presses.reroll.waitForRequest(isResultEdit)).files).toHaveLength(2);
    expect(await usedToday(h, presser.userId)).toBe(2);
    expectUntouched(h, result);
  });

  it('a press after a bot restart still works', async () => {
    const owner = user();
    const result = await imagine(h, { prompt: 'before the restart', samples: 2, seed: 90 }, owner);
    await h.restartBot();
    const details = await privateAnswer(press(h, result, 'details', owner));
    expect(details).toContain('`91`');
    const again = await delivered(h, press(h, result, 'reroll', owner), h.segmind.requests.length);
    expect(again.bodies.map((b) => b.seed)).toEqual([CHOSEN_SEED, CHOSEN_SEED + 1]);
    expect(again.bodies.map((b) => b.prompt)).toEqual(['before the restart', 'before the restart']);
    const modal = await modalOf(pick(h, result, 'Remix image 2', owner));
    expect(modalFields(modal)).toMatchObject({ prompt: 'before the restart', seed: '91' });
    expectUntouched(h, result);
  });
});

describe('a press is checked and charged exactly like /imagine', () => {
  let current: Harness | undefined;
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  const start = async (env: Record<string, string>, options: HarnessOptions = {}) => {
    current = await startHarness({ env, random, ...options });
    return current;
  };

  it('refuses a press while the presser is on cooldown, privately and without calling Segmind', async () => {
    const h = await start({ DEFAULT_DAILY_CREDITS: '100', DEFAULT_COOLDOWN_SECONDS: '600' });
    const owner = user();
    const result = await imagine(h, { prompt: 'a slow snail', samples: 2, seed: 1 }, owner);

    expect(await refusalAfterDeferral(press(h, result, 'reroll', owner))).toMatch(/^❌ You're on cooldown\. Try again <t:\d+:R>\.$/);
    const modal = await modalOf(press(h, result, 'remix', owner)); // opening the form is free…
    const submit = h.discord.sendModalSubmit({ customId: modal.custom_id, fields: { ...modalFields(modal), prompt: 'a fast snail' }, ...owner });
    expect(await refusalAfterDeferral(submit)).toMatch(/^❌ You're on cooldown\./); // …generating is not
    expect(h.segmind.requests).toHaveLength(2);
    expect(await usedToday(h, owner.userId)).toBe(2);

    // the cooldown is the presser's: another member may re-roll, then waits in turn
    const other = user();
    await delivered(h, press(h, result, 'reroll', other), 2);
    expect(await refusalAfterDeferral(press(h, result, 'reroll', other))).toMatch(/^❌ You're on cooldown\./);
    expect(h.segmind.requests).toHaveLength(4);
  });

  it('refuses a press from a member who is out of credits; Details stays free', async () => {
    const h = await start({ DEFAULT_DAILY_CREDITS: '2', DEFAULT_COOLDOWN_SECONDS: '0' });
    const owner = user();
    const result = await imagine(h, { prompt: 'two pebbles', samples: 2, seed: 101 }, owner);
    expect(await refusalAfterDeferral(press(h, result, 'reroll', owner))).toMatch(/^❌ You've used all your image credits for today\./);
    expect(await privateAnswer(press(h, result, 'details', owner))).toContain('`102`');
    expect(h.segmind.requests).toHaveLength(2);

    // a member with credits left may re-roll the two images; a third would be one too many
    const other = user();
    await delivered(h, press(h, result, 'reroll', other), 2);
    expect(await usedToday(h, other.userId)).toBe(2);
    expect(await usedToday(h, owner.userId)).toBe(2);
  });

  it("refuses a blocked member, a banned word, another channel and a paused server, as /imagine does", async () => {
    const art = snowflake();
    const h = await start(NO_LIMITS, { discord: { guilds: [{ channels: [{ name: 'general' }, { id: art, name: 'art' }] }] } });
    const moderator = { userId: snowflake(), permissions: MANAGE_SERVER };
    const owner = user();
    const blocked = user();
    const result = await imagine(h, { prompt: 'a castle in the fog', seed: 5 }, owner);

    await admin(h, 'block add', { member: blocked.userId, reason: 'spam' }, moderator);
    expect(await refusalAfterDeferral(press(h, result, 'reroll', blocked))).toBe('❌ You are blocked from generating images in this server. Reason: spam');
    const modal = await modalOf(press(h, result, 'remix', blocked));
    const blockedRemix = h.discord.sendModalSubmit({ customId: modal.custom_id, fields: modalFields(modal), ...blocked });
    expect(await refusalAfterDeferral(blockedRemix)).toBe('❌ You are blocked from generating images in this server. Reason: spam');

    // words banned after the result was made still apply to its re-roll, and to a remix that brings them in
    await admin(h, 'words add', { phrase: 'castle', list: 'banned' }, moderator);
    expect(await refusalAfterDeferral(press(h, result, 'reroll', owner))).toContain('Your prompt contains something this server does not allow (“castle”)');
    await admin(h, 'words remove', { phrase: 'castle', list: 'banned' }, moderator);
    await admin(h, 'words add', { phrase: 'dragon', list: 'banned' }, moderator);
    const dragon = h.discord.sendModalSubmit({ customId: modal.custom_id, fields: { ...modalFields(modal), prompt: 'a dragon over the castle' }, ...owner });
    expect(await refusalAfterDeferral(dragon)).toContain('(“dragon”)');

    await admin(h, 'channels add', { channel: art }, moderator);
    expect(await refusalAfterDeferral(press(h, result, 'reroll', owner))).toBe(`❌ \`/imagine\` is not allowed in this channel. Use <#${art}>.`);
    await admin(h, 'channels clear', {}, moderator);

    await admin(h, 'pause', { reason: 'maintenance' }, moderator);
    expect(await refusalAfterDeferral(press(h, result, 'reroll', owner))).toBe('❌ Image generation is paused in this server by its moderators. Reason: maintenance');
    expect(await refusalAfterDeferral(press(h, result, 'reroll', moderator))).toContain('paused in this server');
    expect(h.segmind.requests).toHaveLength(1);
    expect(await usedToday(h, owner.userId)).toBe(1);
    expect(await usedToday(h, blocked.userId)).toBe(0);

    await admin(h, 'resume', {}, moderator);
    await delivered(h, press(h, result, 'reroll', owner), 1);
  });

  it('answers clearly once the record is older than RESULT_RETENTION_DAYS, or cannot be read back', async () => {
    const h = await start({ ...NO_LIMITS, RESULT_RETENTION_DAYS: '1' });
    const owner = user();
    const result = await imagine(h, { prompt: 'a fading photo', samples: 2, seed: 21 }, owner);
    const key = `result:${result.sent.id}`;
    const stored = (await h.storage.kv.get(key)) as { createdAt: number; ownerId: string; params: { prompt: string } };
    expect(stored).toMatchObject({ ownerId: owner.userId, params: { prompt: 'a fading photo' } });
    expect(Math.abs(stored.createdAt - Date.now())).toBeLessThan(60_000);

    // 23 hours old: still kept
    await h.storage.kv.set(key, { ...stored, createdAt: Date.now() - 23 * 3_600_000 });
    expect(await privateAnswer(press(h, result, 'details', owner))).toContain('`22`');

    // two days old: past the one-day retention
    await h.storage.kv.set(key, { ...stored, createdAt: Date.now() - 2 * DAY_MS });
    const expired = [
      press(h, result, 'details', owner),
      press(h, result, 'remix', owner),
      press(h, result, 'delete', owner),
      pick(h, result, 'Remix image 2', owner),
    ];
    for (const sent of expired) expect(await privateAnswer(sent)).toBe(NO_LONGER_KEPT);
    // the presses that generate are acknowledged before the result is read back
    expect(await refusalAfterDeferral(press(h, result, 'reroll', owner))).toBe(NO_LONGER_KEPT);

    // a record that no longer matches the schema is treated the same way
    await h.storage.kv.set(key, { ...stored, createdAt: Date.now(), params: { prompt: 42 } });
    expect(await refusalAfterDeferral(press(h, result, 'reroll', owner))).toBe(NO_LONGER_KEPT);

    expect(h.segmind.requests).toHaveLength(2);
    expect(await usedToday(h, owner.userId)).toBe(2);
    expect(h.discord.message(result.messageId)).toBeDefined(); // Delete refused to act on a forgotten result
  });
});

describe('the 🚩 Report button', () => {
  let current: Harness | undefined;
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  const general = snowflake();
  const modLog = snowflake();
  const start = async () => {
    current = await startHarness({
      env: NO_LIMITS,
      random,
      discord: { guilds: [{ channels: [{ id: general, name: 'general' }, { id: modLog, name: 'mod-log' }] }] },
    });
    return current;
  };
  const moderator = (): Actor => ({ userId: snowflake(), permissions: MANAGE_SERVER });
  const THANKS = 'Thanks — the moderators have been told.';
  const ALREADY = 'You have already reported this result.';
  const NO_LOG_CHANNEL =
    "❌ This server's moderators have no log channel set, so your report could not be delivered. Tell a moderator directly.";

  /** The reports the log channel received, in order (the moderators' own audit lines left out). */
  const reportsIn = (h: Harness, channelId = modLog) =>
    h.discord.requests
      .filter((r) => r.method === 'POST' && r.path === `/channels/${channelId}/messages` && r.status === 200)
      .map((r) => r.json as { content: string; allowed_mentions?: unknown })
      .filter((body) => body.content.startsWith('🚩'));
  const linkTo = (h: Harness, result: Result) => `https://discord.com/channels/${h.discord.guildId}/${general}/${result.messageId}`;

  /** A Report press is acknowledged privately (an ephemeral deferral), then answered in that private reply. */
  async function reportAnswer(sent: SentInteraction): Promise<string> {
    const callback = await sent.waitForCallback();
    expect(callback.status).toBe(204);
    expect(callback.json).toMatchObject({ type: 5, data: { flags: 64 } });
    const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    return messageOf(edit.json).content ?? '';
  }

  it('posts one report per member to the log channel with a link to the result, and answers privately', async () => {
    const h = await start();
    const owner = user();
    const reporter = user();
    const second = user();
    await admin(h, 'settings set', { log_channel: modLog }, moderator());
    const result = await imagine(h, { prompt: 'a *bold* lighthouse at dusk', seed: 3 }, owner);

    // the same member presses twice at once, then once more: one report reaches the moderators
    const twice = [press(h, result, 'report', reporter), press(h, result, 'report', reporter)];
    expect((await Promise.all(twice.map(reportAnswer))).sort()).toEqual([THANKS, ALREADY].sort());
    expect(await reportAnswer(press(h, result, 'report', reporter))).toBe(ALREADY);
    const expected = {
      content: `🚩 <@${reporter.userId}> reported a result by <@${owner.userId}> in <#${general}>: ${linkTo(h, result)}\n> a \\*bold\\* lighthouse at dusk`,
      allowed_mentions: { parse: [] },
    };
    expect(reportsIn(h)).toEqual([expected]);

    // another member may report it too
    expect(await reportAnswer(press(h, result, 'report', second))).toBe(THANKS);
    expect(reportsIn(h)).toEqual([expected, { ...expected, content: expected.content.replace(reporter.userId, second.userId) }]);

    // nothing public was said, nothing generated, nothing charged, the result untouched
    for (const sent of twice) expect(sent.originalMessage()?.flags ?? 0).toBe(64);
    expect(h.segmind.requests).toHaveLength(1);
    expectUntouched(h, result);
    await expectConsistentLedger(h.storage, { [owner.userId]: 1, [reporter.userId]: 0, [second.userId]: 0 }, { guildId: h.discord.guildId });
  });

  it('without a log channel tells the member privately, posts nothing and records nothing', async () => {
    const h = await start();
    const owner = user();
    const reporter = user();
    const result = await imagine(h, { prompt: 'an unwatched pond', seed: 4 }, owner);

    expect(await reportAnswer(press(h, result, 'report', reporter))).toBe(NO_LOG_CHANNEL);
    expect(h.discord.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/channels/'))).toEqual([]);

    // nothing was recorded: once a log channel is set, the same member's report goes through
    await admin(h, 'settings set', { log_channel: modLog }, moderator());
    expect(await reportAnswer(press(h, result, 'report', reporter))).toBe(THANKS);
    expect(reportsIn(h)).toHaveLength(1);
    await expectConsistentLedger(h.storage, { [owner.userId]: 1, [reporter.userId]: 0 }, { guildId: h.discord.guildId });
  });

  it('is acknowledged privately before any storage read', async () => {
    const h = await start();
    const owner = user();
    await admin(h, 'settings set', { log_channel: modLog }, moderator());
    const result = await imagine(h, { prompt: 'a patient owl', seed: 5 }, owner);

    // every read is held until the test lets it go, and each notes whether the press was acknowledged by then
    const get = h.storage.kv.get.bind(h.storage.kv);
    let answer!: () => void;
    const held = new Promise<void>((resolve) => (answer = resolve));
    let sent: SentInteraction | undefined;
    const readsOfThePress: Array<{ key: string; acknowledged: boolean }> = [];
    const reads = vi.spyOn(h.storage.kv, 'get').mockImplementation((async (key: string) => {
      if (/^(settings|report|result):/.test(key)) readsOfThePress.push({ key, acknowledged: sent?.callback() !== undefined });
      await held;
      return get(key);
    }) as typeof h.storage.kv.get);
    try {
      sent = press(h, result, 'report', user());
      const callback = await sent.waitForCallback();
      expect(callback.json).toMatchObject({ type: 5, data: { flags: 64 } });
      await eventually(() => readsOfThePress.length > 0, 'the press to read storage');
      expect(sent.requests()).toHaveLength(1);
      answer();
      expect(await reportAnswer(sent)).toBe(THANKS);
      expect(readsOfThePress.length).toBeGreaterThan(0);
      expect(readsOfThePress.filter((r) => !r.acknowledged)).toEqual([]);
    } finally {
      answer();
      reads.mockRestore();
    }
    expect(reportsIn(h)).toHaveLength(1);
  });

  it('works for a blocked member in a paused server: it generates nothing and costs nothing', async () => {
    const h = await start();
    const owner = user();
    const blocked = user();
    const mod = moderator();
    await admin(h, 'settings set', { log_channel: modLog }, mod);
    const result = await imagine(h, { prompt: 'a rude sign', seed: 6 }, owner);
    await admin(h, 'block add', { member: blocked.userId, reason: 'spam' }, mod);
    await admin(h, 'pause', { reason: 'review' }, mod);

    expect(await reportAnswer(press(h, result, 'report', blocked))).toBe(THANKS);
    expect(reportsIn(h).map((r) => r.content)).toEqual([
      `🚩 <@${blocked.userId}> reported a result by <@${owner.userId}> in <#${general}>: ${linkTo(h, result)}\n> a rude sign`,
    ]);
    expect(h.segmind.requests).toHaveLength(1);
    await expectConsistentLedger(h.storage, { [owner.userId]: 1, [blocked.userId]: 0 }, { guildId: h.discord.guildId });
  });

  it('still reports a result whose settings are no longer kept: the link and its owner, without the prompt', async () => {
    const h = await start();
    const owner = user();
    const reporter = user();
    await admin(h, 'settings set', { log_channel: modLog }, moderator());
    const result = await imagine(h, { prompt: 'a forgotten lake', seed: 7 }, owner);
    await h.storage.kv.delete(`result:${result.sent.id}`);

    expect(await reportAnswer(press(h, result, 'report', reporter))).toBe(THANKS);
    expect(await reportAnswer(press(h, result, 'report', reporter))).toBe(ALREADY);
    expect(reportsIn(h).map((r) => r.content)).toEqual([
      `🚩 <@${reporter.userId}> reported a result by <@${owner.userId}> in <#${general}>: ${linkTo(h, result)}\n(the settings of this result are no longer kept)`,
    ]);
    await expectConsistentLedger(h.storage, { [owner.userId]: 1, [reporter.userId]: 0 }, { guildId: h.discord.guildId });
  });

  it('tells the member when Discord refuses the report, and lets them report again once it can be delivered', async () => {
    const h = await start();
    const owner = user();
    const reporter = user();
    const mod = moderator();
    // A log channel deleted since it was set: Discord answers Unknown Channel. (`settings set` would refuse it now, as
    // its test line cannot be posted, so the stored setting is written as a server set before the deletion left it.)
    const gone = snowflake();
    await h.storage.kv.set(`settings:${h.discord.guildId}`, { version: 1, logChannelId: gone });
    const result = await imagine(h, { prompt: 'a lost letter', seed: 8 }, owner);

    expect(await reportAnswer(press(h, result, 'report', reporter))).toBe(
      '❌ Your report could not be delivered to the moderators right now. Try again in a minute.',
    );
    const refused = h.discord.requests.filter((r) => r.method === 'POST' && r.path === `/channels/${gone}/messages`);
    expect(refused.map((r) => r.status)).toContain(404);

    await admin(h, 'settings set', { log_channel: modLog }, mod);
    expect(await reportAnswer(press(h, result, 'report', reporter))).toBe(THANKS);
    expect(reportsIn(h)).toHaveLength(1);
    await expectConsistentLedger(h.storage, { [owner.userId]: 1, [reporter.userId]: 0 }, { guildId: h.discord.guildId });
  });
});
