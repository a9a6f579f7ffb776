import { Client, DiscordAPIError, Events, GatewayIntentBits, InteractionResponseType, REST, Routes } from 'discord.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { GuildSettingsRepository, newGuildSettings, type GuildSettings } from '../../src/services/usage/guild-settings.js';
import { FakeDiscord, snowflake, type RecordedRequest, type SentInteraction } from '../fakes/fake-discord.js';
import { renderImage } from '../fakes/images.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';

/**
 * Issue 15: a harness holding every body the bot sent to Discord's OpenAPI description found `attachments[].id` sent
 * as a number. The fake now holds message bodies to that schema (FakeDiscord.protocolViolations); these tests drive
 * every route the bot uploads files through and expect no violation, then prove the fake does refuse a bad body.
 */

const LIMITS = { DEFAULT_DAILY_CREDITS: '1000', DEFAULT_COOLDOWN_SECONDS: '0' };
const GUILD = snowflake();
const GENERAL = snowflake();
const MOD_LOG = snowflake();
const SIXTEEN_MINUTES_AGO = () => Date.now() - 16 * 60_000;

const quiet = createLogger({ level: 'silent', secrets: [] });
const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
const channelPost = (channelId: string) => (r: RecordedRequest) => r.method === 'POST' && r.path === `/channels/${channelId}/messages`;

interface Upload {
  status: number;
  ids: unknown[];
  fileFields: string[];
}

/** What one upload request carried: Discord's answer, the attachment ids of its JSON, and the names of its file parts. */
function uploadOf(request: RecordedRequest): Upload {
  const json = request.json as { attachments?: Array<{ id?: unknown }> };
  return { status: request.status, ids: (json.attachments ?? []).map((a) => a.id), fileFields: request.files.map((f) => f.field) };
}

describe("every message body the bot sends Discord holds to Discord's schema", () => {
  let h: Harness;
  let settings: GuildSettingsRepository;
  let member: string;
  let violationsBefore = 0;

  beforeAll(async () => {
    h = await startHarness({
      env: LIMITS,
      discord: { guilds: [{ id: GUILD, channels: [{ id: GENERAL, name: 'general' }, { id: MOD_LOG, name: 'mod-log' }] }] },
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
    violationsBefore = h.discord.protocolViolations().length;
  });
  afterEach(() => {
    expect(h.discord.protocolViolations().slice(violationsBefore), 'bodies the fake Discord refused').toEqual([]);
  });

  function setServer(change: Partial<GuildSettings>): Promise<GuildSettings> {
    return settings.update(GUILD, (current) => Object.assign(current, newGuildSettings(), change));
  }

  function imagine(options: Record<string, string | number>, createdAt?: number): SentInteraction {
    return sendImagine(h.discord, options, { guildId: GUILD, channelId: GENERAL, userId: member, ...(createdAt ? { createdAt } : {}) });
  }

  async function finished(sent: SentInteraction): Promise<{ outcome: string; delivered?: number }> {
    const line = await eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === sent.id), 'the job’s end', 10_000);
    return line as typeof line & { outcome: string; delivered?: number };
  }

  const ledger = (used: number) => expectConsistentLedger(h.storage, { [member]: used }, { guildId: GUILD });

  it('/imagine with one image: the edit of the reply names its file part files[0] by the attachment id "0"', async () => {
    const sent = imagine({ prompt: 'a lighthouse', seed: 7, output_format: 'png' });
    const edit = await sent.waitForRequest(isEdit);
    expect(uploadOf(edit)).toEqual({ status: 200, ids: ['0'], fileFields: ['files[0]'] });
    expect(await finished(sent)).toMatchObject({ outcome: 'delivered', delivered: 1 });
    expect(sent.originalMessage()?.attachments.map((a) => a.filename)).toEqual(['flux-7.png']);
    await ledger(1);
  });

  it('/imagine with four images: ids "0" to "3", each naming its own file part', async () => {
    const sent = imagine({ prompt: 'four lighthouses', seed: 10, samples: 4, output_format: 'webp' });
    const edit = await sent.waitForRequest(isEdit);
    expect(uploadOf(edit)).toEqual({ status: 200, ids: ['0', '1', '2', '3'], fileFields: ['files[0]', 'files[1]', 'files[2]', 'files[3]'] });
    expect(await finished(sent)).toMatchObject({ outcome: 'delivered', delivered: 4 });
    expect(sent.originalMessage()?.attachments.map((a) => a.filename)).toEqual(['flux-10.webp', 'flux-11.webp', 'flux-12.webp', 'flux-13.webp']);
    await ledger(4);
  });

  it('a result that outlives the interaction token: the channel post carries the same string ids', async () => {
    const before = h.discord.requests.length;
    const sent = imagine({ prompt: 'a late lighthouse', seed: 20, samples: 2 }, SIXTEEN_MINUTES_AGO());
    expect(await finished(sent)).toMatchObject({ outcome: 'delivered', delivered: 2 });
    const posts = h.discord.requests.slice(before).filter(channelPost(GENERAL));
    expect(posts.map(uploadOf)).toEqual([{ status: 200, ids: ['0', '1'], fileFields: ['files[0]', 'files[1]'] }]);
    expect(sent.edits()).toEqual([]);
    await ledger(2);
  });

  it('a flagged image attached to its report in the log channel', async () => {
    await setServer({ logChannelId: MOD_LOG, logFlaggedImages: true });
    h.checker.set('flagged', 31);
    const before = h.discord.requests.length;
    const sent = imagine({ prompt: 'a beach', seed: 30, samples: 2, output_format: 'png' });
    expect(await finished(sent)).toMatchObject({ outcome: 'delivered', delivered: 2 });
    const reports = await eventually(() => {
      const found = h.discord.requests.slice(before).filter(channelPost(MOD_LOG));
      return found.length > 0 && found;
    }, 'the report in the log channel');
    expect(reports.map(uploadOf)).toEqual([{ status: 200, ids: ['0'], fileFields: ['files[0]'] }]);
    expect(reports[0]!.files.map((f) => f.name)).toEqual(['SPOILER_flux-31.png']);
    expect(uploadOf(await sent.waitForRequest(isEdit))).toEqual({ status: 200, ids: ['0', '1'], fileFields: ['files[0]', 'files[1]'] });
    await ledger(2);
  });

  it('a failure past the interaction token: the direct message and the channel fallback are accepted', async () => {
    h.segmind.setDefault({ kind: 'error', status: 400 });
    const sent = imagine({ prompt: 'a failed lighthouse', seed: 40 }, SIXTEEN_MINUTES_AGO());
    await finished(sent);
    const dms = await eventually(() => {
      const found = h.discord.directMessages(member);
      return found.length > 0 && found;
    }, 'the direct message');
    expect(dms[0]!.content).toContain('About your `/imagine` request');

    const closed = member;
    member = snowflake();
    h.discord.closeDirectMessages(member);
    const before = h.discord.requests.length;
    const second = imagine({ prompt: 'another failed lighthouse', seed: 41 }, SIXTEEN_MINUTES_AGO());
    await finished(second);
    const posts = await eventually(() => {
      const found = h.discord.requests.slice(before).filter(channelPost(GENERAL));
      return found.length > 0 && found;
    }, 'the mention in the channel');
    expect(posts.map((r) => r.status)).toEqual([200]);
    await expectConsistentLedger(h.storage, { [closed]: 0, [member]: 0 }, { guildId: GUILD });
  });
});

describe('the fake Discord refuses a message body that breaks the schema, as Discord answers it', () => {
  let fake: FakeDiscord;
  let rest: REST;
  let client: Client | undefined;
  let png: Buffer;

  beforeAll(async () => {
    png = await renderImage({ format: 'png', width: 8, height: 8, seed: 1 });
  });
  beforeEach(async () => {
    fake = await FakeDiscord.start();
    rest = new REST({ api: fake.apiUrl, retries: 0, timeout: 2_000 }).setToken('fake-token');
  });
  afterEach(async () => {
    await client?.destroy();
    client = undefined;
    rest.clearHashSweeper();
    rest.clearHandlerSweeper();
    await fake.stop();
  });

  async function refusal(request: Promise<unknown>): Promise<DiscordAPIError> {
    const error = await request.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(error instanceof DiscordAPIError)) throw new Error(`expected Discord to refuse the body, got ${String(error)}`);
    return error;
  }

  const file = (name = 'a.png') => ({ name, data: png });

  it('flags a number for an attachment id (what the bot sent before), answers 400/50035 and posts nothing', async () => {
    const error = await refusal(
      rest.post(Routes.channelMessages(fake.channelId), { files: [file()], body: { content: 'x', attachments: [{ id: 0, filename: 'a.png' }] } }),
    );
    expect([error.status, error.code]).toEqual([400, 50035]);
    expect(error.rawError).toMatchObject({
      message: 'Invalid Form Body',
      errors: { attachments: { '0': { id: { _errors: [{ code: 'SNOWFLAKE_TYPE_STRING' }] } } } },
    });
    const request = fake.requests.at(-1)!;
    expect(fake.protocolViolations()).toEqual([
      { seq: request.seq, method: 'POST', path: `/channels/${fake.channelId}/messages`, field: 'attachments.0.id', problem: expect.stringContaining('not a snowflake') as string },
    ]);
    expect(fake.publicMessages(fake.channelId)).toEqual([]);
  });

  it('flags an id that is not a snowflake, and one that names no file part; accepts the string id of its part', async () => {
    const post = (attachments: unknown[], files = [file()]) => rest.post(Routes.channelMessages(fake.channelId), { files, body: { content: 'x', attachments } });
    await refusal(post([{ id: 'first' }]));
    await refusal(post([{ id: '1' }]));
    await post([{ id: '0', filename: 'a.png' }]);
    expect(fake.protocolViolations().map((v) => v.field)).toEqual(['attachments.0.id', 'attachments.0.id']);
    expect(fake.protocolViolations().map((v) => v.problem)).toEqual([
      'Value "first" is not snowflake.',
      'No file part files[1] in this request and no attachment 1 on the message.',
    ]);
    expect(fake.publicMessages(fake.channelId).map((m) => m.attachments.map((a) => a.filename))).toEqual([['a.png']]);
  });

  it('lets an edit keep an attachment the message has by its id, and refuses an id the message does not have', async () => {
    const posted = (await rest.post(Routes.channelMessages(fake.channelId), {
      files: [file('kept.png')],
      body: { content: 'x', attachments: [{ id: '0' }] },
    })) as { id: string; attachments: Array<{ id: string }> };
    const kept = posted.attachments[0]!.id;
    const route = Routes.channelMessage(fake.channelId, posted.id);
    await rest.patch(route, { files: [file('new.png')], body: { attachments: [{ id: kept }, { id: '0' }] } });
    expect(fake.message(posted.id)?.attachments.map((a) => a.filename)).toEqual(['kept.png', 'new.png']);
    await refusal(rest.patch(route, { body: { attachments: [{ id: snowflake() }] } }));
    expect(fake.protocolViolations().map((v) => [v.method, v.field])).toEqual([['PATCH', 'attachments.0.id']]);
  });

  it('checks interaction callbacks (under data) and webhook executions too', async () => {
    client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiUrl, retries: 0, timeout: 2_000 } });
    const ready = new Promise((resolve) => client!.once(Events.ClientReady, resolve));
    await client.login('fake-token');
    await ready;
    const sent = fake.sendSlashCommand({ name: 'anything' });
    const error = await refusal(
      rest.post(Routes.interactionCallback(sent.id, sent.token), {
        auth: false,
        files: [file()],
        body: { type: InteractionResponseType.ChannelMessageWithSource, data: { content: 'x', attachments: [{ id: 0 }] } },
      }),
    );
    expect(error.rawError).toMatchObject({ errors: { data: { attachments: { '0': { id: { _errors: [expect.anything()] } } } } } });
    expect(sent.originalMessage()).toBeUndefined();

    const hook = fake.createWebhook();
    await refusal(rest.post(Routes.webhook(hook.id, hook.token), { auth: false, files: [file()], body: { content: 'x', attachments: [{ id: 0 }] } }));
    expect(fake.webhookExecutions()).toEqual([]);
    expect(fake.protocolViolations().map((v) => v.field)).toEqual(['data.attachments.0.id', 'attachments.0.id']);
  });
});
