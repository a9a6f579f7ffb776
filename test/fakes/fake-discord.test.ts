import {
  AttachmentBuilder,
  ButtonInteraction,
  ChatInputCommandInteraction,
  Client,
  DiscordAPIError,
  EmbedBuilder,
  Events,
  GatewayDispatchEvents,
  GatewayIntentBits,
  HTTPError,
  ModalSubmitInteraction,
  Partials,
  Routes,
  type Interaction,
  type MessageReaction,
  type User,
} from 'discord.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDiscord, snowflakeTime, type RecordedRequest } from './fake-discord.js';

// 1x1 transparent PNG
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

function newClient(fake: FakeDiscord): Client {
  return new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiUrl, retries: 0, timeout: 5000 } });
}

/** Resolves on the next `event` (optionally matching `filter`), rejects after `timeoutMs`. */
function nextEvent<T extends unknown[]>(
  client: Client,
  event: string,
  timeoutMs = 5000,
  filter: (...args: T) => boolean = () => true,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const listener = (...args: unknown[]) => {
      if (!filter(...(args as T))) return;
      clearTimeout(timer);
      client.off(event, listener);
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      client.off(event, listener);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on(event, listener);
  });
}

async function startClient(fake: FakeDiscord): Promise<Client> {
  const client = newClient(fake);
  const ready = nextEvent(client, Events.ClientReady);
  await client.login('fake-token');
  await ready;
  return client;
}

/** Runs `handler` on the next interaction the client receives; resolves with its result (or its error). */
function handleNext<T>(client: Client, handler: (i: Interaction) => Promise<T>, timeoutMs = 5000): Promise<T> {
  return nextEvent<[Interaction]>(client, Events.InteractionCreate, timeoutMs).then(([i]) => handler(i));
}

function asObj(v: unknown): Record<string, unknown> {
  expect(v).toBeTypeOf('object');
  return v as Record<string, unknown>;
}

describe('FakeDiscord with a real discord.js Client', () => {
  let fake: FakeDiscord;
  const clients: Client[] = [];

  async function client(): Promise<Client> {
    const c = await startClient(fake);
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    fake = await FakeDiscord.start();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.destroy()));
    await fake.stop();
    await fake.stop(); // idempotent
  });

  it('gets the client ready with the default guild and channel cached', async () => {
    const c = await client();
    expect(c.user?.id).toBe(fake.botUserId);
    expect(c.application?.id).toBe(fake.applicationId);
    const guild = c.guilds.cache.get(fake.guildId);
    expect(guild?.available).toBe(true);
    expect(guild?.channels.cache.get(fake.channelId)?.isTextBased()).toBe(true);
    expect(guild?.members.me?.id).toBe(fake.botUserId);
    expect(guild?.roles.everyone.id).toBe(fake.guildId);
    expect(fake.readyConnections()).toBe(1);
    expect(fake.requests.some((r) => r.method === 'GET' && r.path === '/gateway/bot')).toBe(true);
  });

  it('serves several guilds with roles and an nsfw channel', async () => {
    await fake.stop();
    fake = await FakeDiscord.start({
      guilds: [
        { name: 'One' },
        {
          id: '900000000000000001',
          name: 'Two',
          channels: [{ id: '900000000000000002', name: 'art', nsfw: true }, { name: 'voice', type: 2 }],
          roles: [{ id: '900000000000000003', name: 'Artists', permissions: '2048' }],
        },
      ],
    });
    const c = await client();
    expect([...c.guilds.cache.keys()].sort()).toEqual([fake.guildId, '900000000000000001'].sort());
    const got = handleNext(c, (i) =>
      Promise.resolve(
        i.inCachedGuild() && i.channel?.isTextBased() && 'nsfw' in i.channel
          ? { nsfw: i.channel.nsfw, roles: [...i.member.roles.cache.keys()], guild: i.guild.name }
          : undefined,
      ),
    );
    fake.sendSlashCommand({
      name: 'imagine',
      guildId: '900000000000000001',
      channelId: '900000000000000002',
      roles: ['900000000000000003'],
    });
    const r = await got;
    expect(r?.nsfw).toBe(true);
    expect(r?.guild).toBe('Two');
    expect(r?.roles).toContain('900000000000000003');
  });

  it('delivers a slash command with options, size limit and creation time', async () => {
    const c = await client();
    const createdAt = Date.now() - 1234;
    const got = handleNext(c, (i) => {
      if (!(i instanceof ChatInputCommandInteraction)) throw new Error(`not a chat input: ${i.type}`);
      return Promise.resolve({
        name: i.commandName,
        prompt: i.options.getString('prompt', true),
        steps: i.options.getInteger('steps'),
        guidance: i.options.getNumber('guidance'),
        limit: i.attachmentSizeLimit,
        created: i.createdTimestamp,
        guildId: i.guildId,
        channelId: i.channelId,
        inGuild: i.inCachedGuild(),
        userId: i.user.id,
        roles: i.member?.roles,
        locale: i.locale,
      });
    });
    fake.sendSlashCommand({
      name: 'imagine',
      createdAt,
      userId: '111111111111111111',
      locale: 'de',
      options: [
        { name: 'prompt', type: 3, value: 'a red fox' },
        { name: 'steps', type: 4, value: 28 },
        { name: 'guidance', type: 10, value: 3.5 },
      ],
    });
    const r = await got;
    expect(r).toMatchObject({
      name: 'imagine',
      prompt: 'a red fox',
      steps: 28,
      guidance: 3.5,
      limit: 10 * 1024 * 1024,
      created: createdAt,
      guildId: fake.guildId,
      channelId: fake.channelId,
      inGuild: true,
      userId: '111111111111111111',
      locale: 'de',
    });
  });

  it('records deferReply + editReply with a PNG attachment and an embed', async () => {
    const c = await client();
    const done = handleNext(c, async (i) => {
      if (!i.isChatInputCommand()) throw new Error('unexpected interaction');
      await i.deferReply();
      return i.editReply({
        embeds: [new EmbedBuilder().setTitle('fox').setImage('attachment://a.png')],
        files: [new AttachmentBuilder(PNG, { name: 'a.png' })],
      });
    });
    const sent = fake.sendSlashCommand({ name: 'imagine', options: [{ name: 'prompt', type: 3, value: 'fox' }] });
    const reply = await done;

    const cb = await sent.waitForCallback();
    expect(cb.status).toBe(204);
    expect(asObj(cb.json).type).toBe(5);

    const edits = sent.edits();
    expect(edits).toHaveLength(1);
    const edit = edits[0]!;
    expect(edit.path).toBe(`/webhooks/${fake.applicationId}/${sent.token}/messages/@original`);
    expect(edit.status).toBe(200);
    expect(edit.files).toHaveLength(1);
    expect(edit.files[0]).toMatchObject({ field: 'files[0]', name: 'a.png', contentType: 'image/png' });
    expect(edit.files[0]!.bytes.equals(PNG)).toBe(true);
    const payload = asObj(edit.json);
    expect(payload.embeds).toEqual([expect.objectContaining({ title: 'fox', image: { url: 'attachment://a.png' } })]);
    expect(payload.attachments).toEqual([expect.objectContaining({ id: '0' })]);
    expect(sent.requests().map((r) => r.seq)).toEqual([cb.seq, edit.seq]);

    // The client got a realistic message back.
    expect(reply.attachments.first()?.name).toBe('a.png');
    expect(reply.attachments.first()?.size).toBe(PNG.length);
    expect(reply.attachments.first()?.width).toBe(1);
    expect(reply.embeds[0]?.image?.url).toBe(reply.attachments.first()?.url);
    expect(reply.author.id).toBe(fake.botUserId);
    expect(reply.webhookId).toBe(fake.applicationId);
    expect(sent.originalMessage()?.flags).toBe(0); // no longer "loading"
    expect(fake.message(reply.id)?.attachments).toHaveLength(1);
  });

  it('answers a second acknowledgement with 40060, surfaced as a DiscordAPIError', async () => {
    const [a, b] = [await client(), await client()];
    expect(fake.readyConnections()).toBe(2);
    // Same interaction delivered to two bot processes: both try to answer.
    const answer = (cl: Client) =>
      handleNext(cl, async (i) => {
        if (!i.isChatInputCommand()) throw new Error('unexpected interaction');
        return i.reply({ content: 'hi' }).then(
          () => 'ok' as const,
          (e: unknown) => e,
        );
      });
    const results = Promise.all([answer(a), answer(b)]);
    const sent = fake.sendSlashCommand({ name: 'imagine', connection: 0 });
    fake.redeliver(sent, 1);
    const [ra, rb] = await results;
    const errors = [ra, rb].filter((r) => r !== 'ok');
    expect([ra, rb].filter((r) => r === 'ok')).toHaveLength(1);
    expect(errors).toHaveLength(1);
    const e = errors[0];
    expect(e).toBeInstanceOf(DiscordAPIError);
    expect((e as DiscordAPIError).code).toBe(40060);
    expect((e as DiscordAPIError).status).toBe(400);
    expect(sent.requests().map((r) => r.status).sort()).toEqual([204, 400]);

    // An unknown interaction gets 10062.
    const unknown = await a.rest
      .post(Routes.interactionCallback('123456789012345678', 'nope'), { body: { type: 4, data: { content: 'x' } }, auth: false })
      .catch((x: unknown) => x);
    expect(unknown).toBeInstanceOf(DiscordAPIError);
    expect((unknown as DiscordAPIError).code).toBe(10062);
  });

  it('injects failures with failNext', async () => {
    const c = await client();
    fake.failNext({ method: 'PATCH', path: /\/messages\/@original$/ }, { status: 500 });
    fake.failNext({ method: 'PATCH', path: /\/messages\/@original$/ }, { status: 413, body: { code: 40005, message: 'Request entity too large' } });
    const done = handleNext(c, async (i) => {
      if (!i.isChatInputCommand()) throw new Error('unexpected interaction');
      await i.deferReply();
      const first = await i.editReply({ content: 'a' }).catch((e: unknown) => e);
      const second = await i.editReply({ content: 'b' }).catch((e: unknown) => e);
      const third = await i.editReply({ content: 'c' });
      return { first, second, third };
    });
    const sent = fake.sendSlashCommand({ name: 'imagine' });
    const { first, second, third } = await done;
    // discord.js reports 5xx as HTTPError (it retries them unless retries: 0) and 4xx as DiscordAPIError.
    expect(first).toBeInstanceOf(HTTPError);
    expect((first as HTTPError).status).toBe(500);
    expect(second).toBeInstanceOf(DiscordAPIError);
    expect((second as DiscordAPIError).code).toBe(40005);
    expect(third.content).toBe('c');
    expect(sent.edits().map((r) => [r.status, r.injected])).toEqual([
      [500, true],
      [413, true],
      [200, false],
    ]);
  });

  it('round-trips application commands through PUT and GET', async () => {
    const c = await client();
    const app = c.application!;
    const defs = [
      {
        name: 'imagine',
        description: 'Generate an image',
        options: [{ type: 3, name: 'prompt', description: 'What to draw', required: true }],
      },
      { name: 'help', description: 'Help' },
    ];
    const set = await app.commands.set(defs, fake.guildId);
    expect(set.size).toBe(2);
    const imagine = set.find((x) => x.name === 'imagine')!;
    expect(imagine.guildId).toBe(fake.guildId);
    expect(fake.commandPuts).toHaveLength(1);
    expect(fake.commandPuts[0]!.guildId).toBe(fake.guildId);
    expect(fake.commandPuts[0]!.body).toHaveLength(2);

    const fetched = await app.commands.fetch({ guildId: fake.guildId });
    expect([...fetched.keys()].sort()).toEqual([...set.keys()].sort());
    expect(fetched.get(imagine.id)?.options[0]?.name).toBe('prompt');

    // Ids are stable across PUTs for the same name; global scope is separate.
    const again = await app.commands.set(defs.slice(0, 1), fake.guildId);
    expect(again.first()?.id).toBe(imagine.id);
    expect(fake.registeredCommands(fake.guildId)).toHaveLength(1);
    expect(await app.commands.fetch()).toHaveProperty('size', 0);
    fake.setRegisteredCommands([{ name: 'ping', description: 'Ping' }]);
    expect((await app.commands.fetch()).first()?.name).toBe('ping');

    // A slash command for a registered guild command carries its id.
    const got = handleNext(c, (i) => Promise.resolve(i.isChatInputCommand() ? [i.commandId, i.commandGuildId] : []));
    fake.sendSlashCommand({ name: 'imagine' });
    expect(await got).toEqual([imagine.id, fake.guildId]);
  });

  it('delivers buttons that can deferUpdate() and reply()', async () => {
    const c = await client();
    const first = handleNext(c, async (i) => {
      if (!(i instanceof ButtonInteraction)) throw new Error('not a button');
      await i.deferUpdate();
      const edited = await i.editReply({ content: 'updated' });
      return { customId: i.customId, messageId: i.message.id, edited };
    });
    const sent = fake.sendButton({ customId: 'regen:42', messageId: '222222222222222222' });
    const r = await first;
    expect(r.customId).toBe('regen:42');
    expect(r.messageId).toBe('222222222222222222');
    expect(r.edited.id).toBe('222222222222222222');
    expect(r.edited.content).toBe('updated');
    expect(asObj(sent.callback()?.json).type).toBe(6);

    const second = handleNext(c, async (i) => {
      if (!i.isButton()) throw new Error('not a button');
      await i.reply({ content: 'clicked', flags: 64 });
      return i.customId;
    });
    const sent2 = fake.sendButton({ customId: 'info', messageId: '222222222222222222' });
    expect(await second).toBe('info');
    const cb = await sent2.waitForCallback();
    expect(cb.json).toMatchObject({ type: 4, data: { content: 'clicked', flags: 64 } });
    expect(sent2.originalMessage()?.flags).toBe(64);
    // The button's message kept the earlier edit (the fake remembers messages by id).
    expect(fake.message('222222222222222222')?.content).toBe('updated');
  });

  it('delivers modal submits with their field values (action rows and labels)', async () => {
    const c = await client();
    for (const layout of ['actionRow', 'label'] as const) {
      const got = handleNext(c, async (i) => {
        if (!(i instanceof ModalSubmitInteraction)) throw new Error('not a modal submit');
        await i.reply({ content: 'thanks' });
        return [i.customId, i.fields.getTextInputValue('prompt'), i.fields.getTextInputValue('style')];
      });
      const sent = fake.sendModalSubmit({ customId: 'edit-prompt', fields: { prompt: 'a blue cat', style: 'oil' }, layout });
      expect(await got).toEqual(['edit-prompt', 'a blue cat', 'oil']);
      expect(asObj((await sent.waitForCallback()).json).type).toBe(4);
    }
  });

  it('resumes after disconnectAll and keeps delivering', async () => {
    const c = await client();
    const resumed = nextEvent(c, Events.ShardResume);
    fake.disconnectAll();
    expect(fake.readyConnections()).toBe(0);
    // Sent while the socket is down: replayed on RESUME.
    const got = handleNext(c, (i) => Promise.resolve(i.isChatInputCommand() ? i.commandName : ''));
    fake.sendSlashCommand({ name: 'after-resume' });
    await resumed;
    await fake.waitForReadyConnections(1);
    expect(await got).toBe('after-resume');
  });

  it('expires old tokens and replaces the thinking message with the first follow-up', async () => {
    const c = await client();
    const done = handleNext(c, async (i) => {
      if (!i.isChatInputCommand()) throw new Error('unexpected interaction');
      await i.deferReply();
      return i.editReply('late').catch((e: unknown) => e);
    });
    const old = fake.sendSlashCommand({ name: 'imagine', createdAt: Date.now() - 16 * 60_000 });
    expect(snowflakeTime(old.id)).toBeLessThan(Date.now() - 15 * 60_000);
    const e = await done;
    expect(e).toBeInstanceOf(DiscordAPIError);
    expect((e as DiscordAPIError).code).toBe(50027);

    const done2 = handleNext(c, async (i) => {
      if (!i.isChatInputCommand()) throw new Error('unexpected interaction');
      await i.deferReply();
      return i.followUp('first follow-up');
    });
    const sent = fake.sendSlashCommand({ name: 'imagine' });
    const msg = await done2;
    expect(msg.id).toBe(sent.originalMessage()?.id);
    expect(sent.followUps()).toHaveLength(1);
    const wait: RecordedRequest = sent.followUps()[0]!;
    expect(wait.query.get('wait')).toBe('true');
  });

  it('supports withResponse, fetchReply, deleteReply, showModal, appPermissions and latency', async () => {
    const c = await client();
    const done = handleNext(c, async (i) => {
      if (!i.isChatInputCommand()) throw new Error('unexpected interaction');
      const res = await i.reply({ content: 'hello', withResponse: true });
      const fetched = await i.fetchReply();
      await i.deleteReply();
      const gone = await i.fetchReply().catch((e: unknown) => e);
      return { res, fetched, gone, canAttach: i.appPermissions.has('AttachFiles') };
    });
    const sent = fake.sendSlashCommand({ name: 'imagine', appPermissions: '1024' });
    const { res, fetched, gone, canAttach } = await done;
    expect(res.resource?.message?.content).toBe('hello');
    expect(res.interaction.responseMessageId).toBe(fetched.id);
    expect(fetched.content).toBe('hello');
    expect(gone).toBeInstanceOf(DiscordAPIError);
    expect((gone as DiscordAPIError).code).toBe(10008);
    expect(canAttach).toBe(false);
    expect(sent.callback()?.query.get('with_response')).toBe('true');

    const modal = handleNext(c, async (i) => {
      if (!i.isButton()) throw new Error('unexpected interaction');
      const t0 = Date.now();
      await i.showModal({
        title: 'Edit',
        custom_id: 'edit',
        components: [{ type: 1, components: [{ type: 4, custom_id: 'prompt', label: 'Prompt', style: 1 }] }],
      });
      return Date.now() - t0;
    });
    fake.setLatency({ method: 'POST', path: /\/callback$/ }, 60);
    const btn = fake.sendButton({ customId: 'edit' });
    expect(await modal).toBeGreaterThanOrEqual(55);
    expect(asObj((await btn.waitForCallback()).json).type).toBe(9);
    fake.setLatency({ method: 'POST', path: /\/callback$/ }, 0);
  });

  it('answers channel routes and unknown routes', async () => {
    const c = await client();
    const channel = c.channels.cache.get(fake.channelId);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    const sentMsg = await channel.send({ content: 'hello', files: [new AttachmentBuilder(PNG, { name: 'b.png' })] });
    expect(sentMsg.attachments.first()?.contentType).toBe('image/png');
    const edited = await sentMsg.edit('hello again');
    expect(edited.editedTimestamp).not.toBeNull();
    await sentMsg.delete();
    const fetched = await c.channels.fetch(fake.channelId, { force: true });
    expect(fetched?.id).toBe(fake.channelId);
    const missing = await c.rest.get('/nothing/here').catch((x: unknown) => x);
    expect(missing).toBeInstanceOf(DiscordAPIError);
    expect((missing as DiscordAPIError).status).toBe(404);
    const rec = await fake.waitForRequest((r) => r.path === '/nothing/here');
    expect(rec.status).toBe(404);
  });

  it('serves the bytes behind the attachment URLs it hands out, and 404 for any other', async () => {
    const c = await client();
    const channel = c.channels.cache.get(fake.channelId);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    const sent = await channel.send({ files: [new AttachmentBuilder(PNG, { name: 'a.png' })] });
    const url = sent.attachments.first()?.url ?? '';
    expect(url.startsWith(`http://127.0.0.1:${fake.port}/attachments/`)).toBe(true);
    const answer = await fetch(url);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await answer.arrayBuffer()).equals(PNG)).toBe(true);
    expect((await fetch(url.replace(/\/attachments\/(\d+)\/\d+\//, '/attachments/$1/123/'))).status).toBe(404);
  });
});

describe('FakeDiscord reactions', () => {
  let fake: FakeDiscord;
  const clients: Client[] = [];

  async function clientWith(intents: GatewayIntentBits[]): Promise<Client> {
    const c = new Client({ intents, partials: [Partials.Message, Partials.Reaction], rest: { api: fake.apiUrl, retries: 0, timeout: 5000 } });
    clients.push(c);
    const ready = nextEvent(c, Events.ClientReady);
    await c.login('fake-token');
    await ready;
    return c;
  }

  /** A message the bot posted in the default channel, for members to react to. */
  async function postedMessage(c: Client): Promise<string> {
    const channel = c.channels.cache.get(fake.channelId);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    return (await channel.send('react to me')).id;
  }

  beforeEach(async () => {
    fake = await FakeDiscord.start();
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.destroy()));
    await fake.stop();
  });

  it('sends MESSAGE_REACTION_ADD as Discord does, only to sessions with the GuildMessageReactions intent', async () => {
    const withIntent = await clientWith([GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessageReactions]);
    const without = await clientWith([GatewayIntentBits.Guilds]);
    const messageId = await postedMessage(withIntent);
    const raw: unknown[] = [];
    const rawWithout: unknown[] = [];
    withIntent.ws.on(GatewayDispatchEvents.MessageReactionAdd, (data: unknown) => raw.push(data));
    without.ws.on(GatewayDispatchEvents.MessageReactionAdd, (data: unknown) => rawWithout.push(data));
    const member = '223456789012345678';
    const event = nextEvent<[MessageReaction, User]>(withIntent, Events.MessageReactionAdd);
    expect(fake.addReaction({ messageId, userId: member })).toBe(true);
    const [reaction, user] = await event;
    expect(reaction.emoji.name).toBe('⭐');
    expect(reaction.message.id).toBe(messageId);
    expect(user.id).toBe(member);
    expect(raw).toEqual([
      expect.objectContaining({
        guild_id: fake.guildId,
        channel_id: fake.channelId,
        message_id: messageId,
        user_id: member,
        message_author_id: fake.botUserId,
        emoji: { id: null, name: '⭐' },
        burst: false,
        type: 0,
        member: expect.objectContaining({ user: expect.objectContaining({ id: member }) as unknown }) as unknown,
      }),
    ]);
    // The same member's ⭐ again changes nothing and sends nothing.
    expect(fake.addReaction({ messageId, userId: member })).toBe(false);
    const removed = nextEvent<[MessageReaction, User]>(withIntent, Events.MessageReactionRemove);
    expect(fake.removeReaction({ messageId, userId: member })).toBe(true);
    expect((await removed)[1].id).toBe(member);
    expect(raw).toHaveLength(1);
    expect(rawWithout).toEqual([]);
  });

  it('lists who reacted, by ascending id, with limit and after, and counts them on the message', async () => {
    const c = await clientWith([GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessageReactions]);
    const messageId = await postedMessage(c);
    const members = ['300000000000000003', '100000000000000001', '200000000000000002'];
    for (const userId of members) fake.addReaction({ messageId, userId });
    fake.addReaction({ messageId, userId: '400000000000000004', bot: true });
    fake.addReaction({ messageId, userId: '100000000000000001', emoji: '🔥' });
    const route = Routes.channelMessageReaction(fake.channelId, messageId, encodeURIComponent('⭐'));
    const list = (query: string) => c.rest.get(route, { query: new URLSearchParams(query) }) as Promise<Array<{ id: string; bot?: boolean }>>;
    expect((await list('')).map((u) => u.id)).toEqual(['100000000000000001', '200000000000000002', '300000000000000003', '400000000000000004']);
    expect((await list('limit=2')).map((u) => u.id)).toEqual(['100000000000000001', '200000000000000002']);
    expect((await list('limit=2&after=200000000000000002')).map((u) => u.id)).toEqual(['300000000000000003', '400000000000000004']);
    expect((await list('')).find((u) => u.id === '400000000000000004')?.bot).toBe(true);
    expect(await list('type=1')).toEqual([]);
    expect(await list('limit=101').catch((x: unknown) => (x as DiscordAPIError).status)).toBe(400);
    const message = (await c.rest.get(Routes.channelMessage(fake.channelId, messageId))) as { reactions?: Array<{ count: number; emoji: { name: string } }> };
    expect(message.reactions?.map((r) => [r.emoji.name, r.count])).toEqual([
      ['⭐', 4],
      ['🔥', 1],
    ]);
  });
});

describe('FakeDiscord gateway shards', () => {
  let fake: FakeDiscord;
  const clients: Client[] = [];
  const A = FakeDiscord.guildIdOnShard(0, 2);
  const B = FakeDiscord.guildIdOnShard(1, 2);

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.destroy()));
    await fake.stop();
  });

  async function shardedClient(shards: number[], shardCount: number): Promise<Client> {
    const c = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiUrl, retries: 0, timeout: 5000 }, shards, shardCount });
    clients.push(c);
    const ready = nextEvent(c, Events.ClientReady);
    await c.login('fake-token');
    await ready;
    return c;
  }

  /** A raw gateway connection: HELLO, then our IDENTIFY; resolves with the close code. */
  async function rawIdentify(shard: unknown): Promise<number> {
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(fake.gatewayUrl);
    return new Promise<number>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('message', (data: Buffer) => {
        const msg = JSON.parse(data.toString()) as { op: number };
        if (msg.op === 10) ws.send(JSON.stringify({ op: 2, d: { token: 'fake-token', intents: 1, properties: {}, shard } }));
      });
      ws.on('close', (code) => resolve(code));
    });
  }

  it('maps a server to shard (guild_id >> 22) % count', async () => {
    fake = await FakeDiscord.start();
    expect(FakeDiscord.shardOf(A, 2)).toBe(0);
    expect(FakeDiscord.shardOf(B, 2)).toBe(1);
    expect(FakeDiscord.shardOf(FakeDiscord.guildIdOnShard(3, 4, 5), 4)).toBe(3);
  });

  it('answers GET /gateway/bot with the settable recommendation and max_concurrency', async () => {
    fake = await FakeDiscord.start({ shards: 3, maxConcurrency: 4 });
    const body = (await (await fetch(`${fake.apiUrl}/v10/gateway/bot`)).json()) as { shards: number; session_start_limit: { max_concurrency: number } };
    expect(body.shards).toBe(3);
    expect(body.session_start_limit.max_concurrency).toBe(4);
    fake.recommendedShards = 5;
    fake.maxConcurrency = 1;
    expect(await (await fetch(`${fake.apiUrl}/v10/gateway/bot`)).json()).toMatchObject({ shards: 5, session_start_limit: { max_concurrency: 1 } });
  });

  it("sends each shard only its servers' GUILD_CREATE and interactions, and records the identifies", async () => {
    fake = await FakeDiscord.start({ guilds: [{ id: A }, { id: B }], maxConcurrency: 2 });
    const c = await shardedClient([0, 1], 2);
    expect(fake.identifies.map((i) => [i.shardId, i.shardCount]).sort()).toEqual([[0, 2], [1, 2]]);
    expect(c.guilds.cache.get(A)?.shardId).toBe(0);
    expect(c.guilds.cache.get(B)?.shardId).toBe(1);
    expect(fake.readyConnections()).toBe(2);

    const shardOf = async (guildId: string) => {
      const raw = nextEvent<[{ t: string }, number]>(c, Events.Raw, 5000, (packet) => packet.t === 'INTERACTION_CREATE');
      fake.sendSlashCommand({ name: 'ping', guildId });
      const [, shardId] = await raw;
      return shardId;
    };
    expect(await shardOf(A)).toBe(0);
    expect(await shardOf(B)).toBe(1);
  });

  it('gives two clients running one shard each only their own servers', async () => {
    fake = await FakeDiscord.start({ guilds: [{ id: A }, { id: B }] });
    const zero = await shardedClient([0], 2);
    const one = await shardedClient([1], 2);
    expect([...zero.guilds.cache.keys()]).toEqual([A]);
    expect([...one.guilds.cache.keys()]).toEqual([B]);
    const joined = FakeDiscord.guildIdOnShard(1, 2, 1);
    const created = nextEvent(one, Events.GuildCreate);
    fake.joinGuild({ id: joined });
    await created;
    expect(one.guilds.cache.has(joined)).toBe(true);
    expect(zero.guilds.cache.has(joined)).toBe(false);
  });

  it('still runs an unsharded client as shard 0 of 1 with every server', async () => {
    fake = await FakeDiscord.start({ guilds: [{ id: A }, { id: B }] });
    const c = await startClient(fake);
    clients.push(c);
    expect(fake.identifies.map((i) => [i.shardId, i.shardCount])).toEqual([[0, 1]]);
    expect(c.guilds.cache.size).toBe(2);
  });

  it('closes an invalid shard with 4010 and a too small shard count with 4011', async () => {
    fake = await FakeDiscord.start({ minShardCount: 2 });
    expect(await rawIdentify([2, 2])).toBe(4010);
    expect(await rawIdentify([0, 0])).toBe(4010);
    expect(await rawIdentify([0, 1])).toBe(4011);
    expect(await rawIdentify(undefined)).toBe(4011); // unsharded = one shard
    expect(fake.identifies).toHaveLength(4);
    expect(fake.readyConnections()).toBe(0);
  });
});
