import { DiscordAPIError, REST } from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.js';
import { DiscordResponder, isClosedDirectMessages, type SentAttachment } from '../../../src/services/discord/discord-responder.js';
import { resultComponents } from '../../../src/services/results/result-components.js';
import { FakeDiscord } from '../../fakes/fake-discord.js';
import { renderImage } from '../../fakes/images.js';

const quiet = createLogger({ level: 'silent', secrets: [] });

let discord: FakeDiscord;
let rest: REST;
let responder: DiscordResponder;
let images: Array<{ name: string; data: Buffer }>;

beforeAll(async () => {
  discord = await FakeDiscord.start();
  rest = new REST({ api: discord.apiUrl, retries: 0, timeout: 2_000 }).setToken('fake-token');
  responder = new DiscordResponder({ webhooks: rest, channels: rest }, quiet);
  images = await Promise.all(
    [1, 2, 3].map(async (seed) => ({ name: `flux-${seed}.png`, data: await renderImage({ seed, format: 'png', width: 8, height: 8 }) })),
  );
});
afterAll(async () => {
  rest.clearHashSweeper();
  rest.clearHandlerSweeper();
  await discord.stop();
});

/** The parts of a multipart body as Discord reads them: the payload_json, and the file parts' field names. */
async function partsOf(body: Buffer, contentType: string): Promise<{ payload: { attachments?: unknown[] }; fileFields: string[] }> {
  const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  const payload = form.get('payload_json');
  if (typeof payload !== 'string') throw new Error('no payload_json part');
  const fileFields = [...form.entries()].filter(([, value]) => typeof value !== 'string').map(([field]) => field);
  return { payload: JSON.parse(payload) as { attachments?: unknown[] }, fileFields };
}

describe('DiscordResponder message bodies', () => {
  it('names each upload by a snowflake string id, the n of its files[n] part, as Discord and discord.js do', async () => {
    const prepared = responder.prepare({ content: 'three', files: images });
    const { payload, fileFields } = await partsOf(prepared.body, prepared.contentType);
    expect(fileFields).toEqual(['files[0]', 'files[1]', 'files[2]']);
    expect(payload.attachments).toEqual([
      { id: '0', filename: 'flux-1.png' },
      { id: '1', filename: 'flux-2.png' },
      { id: '2', filename: 'flux-3.png' },
    ]);
  });

  it('keeps the ids strings in a channel post of a prepared message (the late result) and of a log-channel report', async () => {
    const before = discord.requests.length;
    const address = { applicationId: discord.applicationId, token: 'unused', channelId: discord.channelId, userId: discord.defaultUserId };
    const posted = await responder.postInChannel(address, responder.prepare({ content: 'late', files: images.slice(0, 2) }), 'took a while');
    await responder.postToChannel(discord.channelId, { content: 'report', files: images.slice(2) });

    const posts = discord.requests.slice(before);
    expect(posts.map((r) => [r.method, r.status])).toEqual([
      ['POST', 200],
      ['POST', 200],
    ]);
    expect(posts.map((r) => (r.json as { attachments: SentAttachment[] }).attachments.map((a) => a.id))).toEqual([['0', '1'], ['0']]);
    expect(posted).toBe((posts[0]!.response as { id: string }).id);
    expect(discord.message(posted!)?.attachments.map((a) => a.filename)).toEqual(['flux-1.png', 'flux-2.png']);
    expect(discord.protocolViolations()).toEqual([]);
  });

  it('sends a prepared result by direct message with its images, the preface first and no buttons', async () => {
    const member = '123456789012345678';
    const components = resultComponents('1', [{ index: 0, seed: 1 }], { private: true });
    const prepared = responder.prepare({ content: '**a fox** — <@1>', files: images.slice(0, 2), components });
    const id = await responder.sendDirectMessageWith(member, prepared, '🔒 here it is');
    const [dm] = discord.directMessages(member);
    expect(dm?.id).toBe(id);
    expect(dm?.content).toBe('🔒 here it is\n**a fox** — <@1>');
    expect(dm?.attachments.map((a) => a.filename)).toEqual(['flux-1.png', 'flux-2.png']);
    expect(dm?.components ?? []).toEqual([]);
    expect(discord.protocolViolations()).toEqual([]);

    discord.closeDirectMessages(member);
    const refused = await responder.sendDirectMessageWith(member, prepared, 'again').catch((e: unknown) => e);
    expect(isClosedDirectMessages(refused)).toBe(true);
  });

  it('would be refused by the fake, as Invalid Form Body, with a number for an id', async () => {
    // What the responder sent before: the same body with `id: 0`. The fake must refuse it, or the tests above prove nothing.
    const error = await rest
      .post(`/channels/${discord.channelId}/messages`, {
        files: [{ name: 'flux-1.png', data: images[0]!.data }],
        body: { content: 'old', attachments: [{ id: 0, filename: 'flux-1.png' }] },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscordAPIError);
    expect((error as DiscordAPIError).code).toBe(50035);
    expect((error as DiscordAPIError).message).toContain('attachments[0].id[SNOWFLAKE_TYPE_STRING]');
  });

  it('is typed so that a number id does not compile', () => {
    // @ts-expect-error discord-api-types allows `id: number`; our SentAttachment does not (tsc checks this line).
    const wrong: SentAttachment = { id: 0, filename: 'flux-1.png' };
    const right: SentAttachment = { id: '0', filename: 'flux-1.png' };
    expect([typeof wrong.id, typeof right.id]).toEqual(['number', 'string']);
  });
});
