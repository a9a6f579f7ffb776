import { DiscordAPIError, type REST } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.js';
import { DiscordResponder, type InteractionAddress } from '../../../src/services/discord/discord-responder.js';
import type { FluxDevParams } from '../../../src/services/segmind/flux-params.js';
import { buildResultMessage, LATE_POST_ROOM, MAX_CONTENT_LENGTH, settingsLine, type BatchImage, type BatchResult } from '../../../src/services/results/result-message.js';
import { LIMITS } from '../../../src/services/segmind/flux-params.js';
import { plural } from '../../../src/plural.js';
import { SegmindError } from '../../../src/services/segmind/segmind-errors.js';

const params: FluxDevParams = {
  prompt: 'a *bold* fox',
  aspect_ratio: '16:9',
  guidance: 3.5,
  steps: 30,
  samples: 3,
  seed: 100,
  output_format: 'png',
  output_quality: 80,
  prompt_strength: 0.8,
};

function image(index: number, size = 10): BatchImage {
  return { index, seed: 100 + index, bytes: Buffer.alloc(size), format: 'png', status: 200, attempts: 1, durationMs: 5 };
}

const OWNER = '33333333333333333';
const ctx = { ownerId: OWNER };

describe('result message', () => {
  it('names the prompt (escaped) and its author, then one settings line; the images as a gallery of attachment:// embeds', () => {
    const result: BatchResult = { images: [image(0), image(1), image(2)], failures: [], durationMs: 21_340 };
    const message = buildResultMessage({ ...params }, result, 1000, ctx);
    expect(message.files.map((f) => f.name)).toEqual(['flux-100.png', 'flux-101.png', 'flux-102.png']);
    expect(message.embeds.map((e) => e.image?.url)).toEqual([
      'attachment://flux-100.png',
      'attachment://flux-101.png',
      'attachment://flux-102.png',
    ]);
    // same url on every embed: Discord renders them as one gallery
    expect(new Set(message.embeds.map((e) => e.url)).size).toBe(1);
    expect(message.content).toBe(`**a \\*bold\\* fox** — <@${OWNER}>\nseeds 100–102 · 16:9 · 30 steps · guidance 3.5 · 21.3 s`);
    expect(message.notes).toBe('');
  });

  it('names the model once, and leaves format, quality and prompt strength to Details', () => {
    const message = buildResultMessage({ ...params, output_format: 'webp' }, { images: [image(0), image(1), image(2)], failures: [], durationMs: 1 }, 1000, ctx);
    const everything = JSON.stringify({ content: message.content, embeds: message.embeds });
    expect(everything.match(/FLUX\.1 \[dev\]/g)).toHaveLength(1);
    expect(message.embeds[0]!.footer?.text).toBe('FLUX.1 [dev]');
    expect(message.embeds.some((e) => e.title !== undefined || e.description !== undefined || e.fields !== undefined)).toBe(false);
    expect(message.content).not.toMatch(/webp|quality|strength/i);
  });

  it('names a style under the first image and shows the member’s own prompt, not the expansion', () => {
    const expanded = { ...params, prompt: 'a *bold* fox, anime key visual, cel shading' };
    const message = buildResultMessage(expanded, { images: [image(0), image(1), image(2)], failures: [], durationMs: 1 }, 1000, {
      ...ctx,
      style: { name: 'anime', memberPrompt: 'a *bold* fox' },
    });
    expect(message.embeds[0]!.footer?.text).toBe('FLUX.1 [dev] · style: anime');
    expect(message.content.split('\n')[0]).toBe(`**a \\*bold\\* fox** — <@${OWNER}>`);
    expect(message.content).not.toContain('cel shading');
  });

  it('shows one seed for one image, and lists seeds that wrap past 2^32', () => {
    expect(settingsLine({ ...params, samples: 1, seed: 42, aspect_ratio: '1:1', steps: 1, guidance: 0 }, 6_140)).toBe('seed 42 · 1:1 · 1 step · guidance 0 · 6.1 s');
    expect(settingsLine({ ...params, samples: 3, seed: 2 ** 32 - 2 }, 0)).toBe('seeds 4294967294, 4294967295, 0 · 16:9 · 30 steps · guidance 3.5 · 0.0 s');
  });

  it('keeps the content within Discord’s 2000 characters, with room for a late post, for the longest prompt and every note', () => {
    const longest = '*_'.repeat(LIMITS.promptMaxLength / 2); // every character escaped: 4000 characters once escaped
    const failures = [1, 2, 3].map((index) => ({ index, seed: 100 + index, error: new SegmindError('invalid_parameters', { reason: 'x'.repeat(200) }) }));
    const message = buildResultMessage(
      { ...params, prompt: longest, samples: 4 },
      { images: [{ ...image(0), spoiler: true }], failures, durationMs: 1 },
      1000,
      { ownerId: OWNER, extraNotes: ['⚠️ 1 image was not generated because the bot is restarting. Nothing was charged for it.'] },
    );
    expect(message.content.length).toBeLessThanOrEqual(MAX_CONTENT_LENGTH - LATE_POST_ROOM);
    const [first, settings, ...notes] = message.content.split('\n');
    expect(first).toMatch(/^\*\*(\\\*\\_)+…\*\* — <@33333333333333333>$/);
    expect(settings).toBe('seeds 100–103 · 16:9 · 30 steps · guidance 3.5 · 0.0 s');
    expect(notes.join('\n')).toBe(message.notes);
    expect(notes).toHaveLength(5);
  });

  it('leaves a prompt that fits whole, and cuts a long one between whole characters', () => {
    const fits = 'a fox '.repeat(250).trim();
    expect(buildResultMessage({ ...params, prompt: fits }, { images: [image(0)], failures: [], durationMs: 1 }, 1000, ctx).content).toContain(`**${fits}**`);
    const emoji = '🦊'.repeat(2000);
    const cut = buildResultMessage({ ...params, prompt: emoji }, { images: [image(0)], failures: [], durationMs: 1 }, 1000, ctx).content;
    expect(cut).toMatch(/^\*\*(🦊)+…\*\*/u);
    expect(cut.length).toBeLessThanOrEqual(MAX_CONTENT_LENGTH - LATE_POST_ROOM);
  });

  it('posts what succeeded and says which image failed, why, and that it cost nothing', () => {
    const failure = { index: 1, seed: 101, error: new SegmindError('server_error', { status: 500 }) };
    const message = buildResultMessage(params, { images: [image(0), image(2)], failures: [failure], durationMs: 1 }, 1000, ctx);
    expect(message.files).toHaveLength(2);
    expect(message.notes).toBe('⚠️ Image 2 of 3 (seed 101) failed, not charged: The image service had a problem — try again in a moment.');
    expect(message.content.endsWith(`\n${message.notes}`)).toBe(true);
  });

  it('leaves out an image over the upload limit and explains it', () => {
    const message = buildResultMessage(
      { ...params, samples: 2 },
      { images: [image(0, 10), image(1, 3 * 1024 * 1024)], failures: [], durationMs: 1 },
      2 * 1024 * 1024,
      ctx,
    );
    expect(message.files.map((f) => f.name)).toEqual(['flux-100.png']);
    expect(message.oversized.map((i) => i.seed)).toEqual([101]);
    expect(message.content).toContain("3.0 MiB, over this server's 2.0 MiB upload limit, not charged");
  });

  it('keeps one message under Discord’s 25 MiB in all, and says which image did not fit', () => {
    const nine = 9 * 1024 * 1024;
    const message = buildResultMessage(
      { ...params, samples: 3 },
      { images: [image(0, nine), image(1, nine), image(2, nine)], failures: [], durationMs: 1 },
      10 * 1024 * 1024,
      ctx,
    );
    expect(message.files.map((f) => f.name)).toEqual(['flux-100.png', 'flux-101.png']);
    expect(message.oversized.map((i) => i.seed)).toEqual([102]);
    expect(message.content).toContain('Image 3 of 3 (seed 102) did not fit in one message');
    expect(message.content).toContain('`seed:102`');
  });

  it('attaches a spoilered image under a SPOILER_ name, keeps it out of every embed, and says why in a short note', () => {
    const message = buildResultMessage(params, { images: [image(0), { ...image(1), spoiler: true }, image(2)], failures: [], durationMs: 1 }, 1000, ctx);
    expect(message.files.map((f) => f.name)).toEqual(['flux-100.png', 'SPOILER_flux-101.png', 'flux-102.png']);
    expect(message.embeds.map((e) => e.image?.url)).toEqual(['attachment://flux-100.png', 'attachment://flux-102.png']);
    expect(JSON.stringify(message.embeds)).not.toContain('SPOILER_');
    expect(message.notes).toBe('⚠️ Image 2 of 3 (seed 101) may show sensitive content, so it is hidden behind a spoiler: click to show.');
  });

  it('shows no image in the embed when the only image is spoilered', () => {
    const one = { ...params, samples: 1 };
    const message = buildResultMessage(one, { images: [{ ...image(0), spoiler: true }], failures: [], durationMs: 1 }, 1000, ctx);
    expect(message.files.map((f) => f.name)).toEqual(['SPOILER_flux-100.png']);
    expect(message.embeds).toHaveLength(1);
    expect(message.embeds[0]!.image).toBeUndefined();
    expect(message.notes).toBe('⚠️ This image may show sensitive content, so it is hidden behind a spoiler: click to show.');
  });

  it('attaches nothing of a withheld image (the member is told privately)', () => {
    const message = buildResultMessage(params, { images: [image(0), image(2)], failures: [], durationMs: 1, withheld: [{ index: 1, seed: 101 }] }, 1000, ctx);
    expect(message.files.map((f) => f.name)).toEqual(['flux-100.png', 'flux-102.png']);
    expect(message.notes).toBe('');
  });
});

describe('plural', () => {
  it.each([
    [0, 'image', '0 images'],
    [1, 'image', '1 image'],
    [4, 'image', '4 images'],
    [1, 'step', '1 step'],
  ] as const)('%i %s → %s', (count, noun, text) => {
    expect(plural(count, noun)).toBe(text);
  });

  it('takes an irregular plural', () => {
    expect(plural(2, 'person', 'people')).toBe('2 people');
    expect(plural(1, 'person', 'people')).toBe('1 person');
  });
});

/** A REST client that records what it is asked to send, and fails when told to. */
function recordingRest(fail?: (options: Record<string, unknown>) => Error) {
  const calls: Array<{ method: string; route: string; options: Record<string, unknown> }> = [];
  const handle = (method: string) => (route: string, options: Record<string, unknown>) => {
    calls.push({ method, route, options });
    return fail ? Promise.reject(fail(options)) : Promise.resolve({});
  };
  return { calls, rest: { patch: handle('PATCH'), post: handle('POST'), get: handle('GET') } as unknown as REST };
}

/** Parses a multipart body as Discord (and the fake Discord) would. */
async function parseMultipart(body: unknown, contentType: string) {
  const form = await new Request('http://x', { method: 'POST', headers: { 'content-type': contentType }, body: body as Buffer }).formData();
  const files: Array<{ field: string; name: string; type: string; bytes: Buffer }> = [];
  let json: unknown;
  for (const [field, value] of form.entries()) {
    if (typeof value === 'string') json = field === 'payload_json' ? JSON.parse(value) : json;
    else files.push({ field, name: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
  }
  return { files, json: json as Record<string, unknown> };
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WEBPVP8 '), Buffer.alloc(20, 7)]);
const to: InteractionAddress = { applicationId: '11111111111111111', token: 'tok', channelId: '22222222222222222', userId: '33333333333333333' };
const quiet = createLogger({ level: 'silent', secrets: [] });

describe('result message on its way to Discord', () => {
  it('is sent as one multipart body Discord reads back as the same files and payload', async () => {
    const { calls, rest } = recordingRest();
    const responder = new DiscordResponder({ webhooks: rest, channels: rest }, quiet);
    const files = [
      { name: 'flux-1.png', data: Buffer.concat([PNG, Buffer.alloc(5000, 1)]) },
      { name: 'flux-"2".webp', data: WEBP },
    ];
    await responder.editOriginal(to, { content: 'two images', embeds: [{ title: 'FLUX' }], files, components: [] });

    expect(calls).toHaveLength(1);
    const { method, route, options } = calls[0]!;
    expect(method).toBe('PATCH');
    expect(route).toBe('/webhooks/11111111111111111/tok/messages/%40original');
    expect(options).toMatchObject({ auth: false, passThroughBody: true });
    expect(options.files).toBeUndefined();
    const contentType = (options.headers as Record<string, string>)['Content-Type']!;
    expect(contentType).toMatch(/^multipart\/form-data; boundary=/);
    const parsed = await parseMultipart(options.body, contentType);
    expect(parsed.files.map((f) => [f.field, f.name, f.type])).toEqual([
      ['files[0]', 'flux-1.png', 'image/png'],
      ['files[1]', 'flux-"2".webp', 'image/webp'],
    ]);
    expect(parsed.files[0]!.bytes.equals(files[0]!.data)).toBe(true);
    expect(parsed.files[1]!.bytes.equals(WEBP)).toBe(true);
    expect(parsed.json).toEqual({
      content: 'two images',
      embeds: [{ title: 'FLUX' }],
      components: [],
      attachments: [
        { id: '0', filename: 'flux-1.png' },
        { id: '1', filename: 'flux-"2".webp' },
      ],
      allowed_mentions: { parse: [] },
    });
  });

  it('holds its images only in the prepared body, which a channel post reuses and release lets go', async () => {
    const { calls, rest } = recordingRest();
    const responder = new DiscordResponder({ webhooks: rest, channels: rest }, quiet);
    const data = Buffer.concat([PNG, Buffer.alloc(1000, 2)]);
    const prepared = responder.prepare({ content: 'done', files: [{ name: 'flux-7.png', data }] });
    // The body is a copy: the caller's image may go.
    data.fill(0);
    expect(prepared.byteLength).toBeGreaterThan(1000);

    await responder.postInChannel(to, prepared, 'here are your images.');
    const { method, route, options } = calls[0]!;
    expect([method, route]).toEqual(['POST', '/channels/22222222222222222/messages']);
    const parsed = await parseMultipart(options.body, (options.headers as Record<string, string>)['Content-Type']!);
    expect(parsed.files[0]!.bytes.equals(Buffer.concat([PNG, Buffer.alloc(1000, 2)]))).toBe(true);
    expect(parsed.json).toMatchObject({
      content: '<@33333333333333333> here are your images.\ndone',
      allowed_mentions: { users: ['33333333333333333'] },
      attachments: [{ id: '0', filename: 'flux-7.png' }],
    });

    prepared.release();
    expect(prepared.byteLength).toBe(0);
    await expect(responder.editOriginal(to, prepared)).rejects.toThrow(/released/);
  });

  it('sends text-only messages as JSON, as before', async () => {
    const { calls, rest } = recordingRest();
    const responder = new DiscordResponder({ webhooks: rest, channels: rest }, quiet);
    await responder.editOriginal(to, { content: '⏳ Queued', components: [] });
    expect(calls[0]!.options).toEqual({
      auth: false,
      body: { content: '⏳ Queued', embeds: [], components: [], attachments: [], allowed_mentions: { parse: [] } },
    });
  });

  it('drops the image bytes from a Discord error before anyone logs or keeps it', async () => {
    const { rest } = recordingRest(
      (options) =>
        new DiscordAPIError({ code: 50035, message: 'Invalid Form Body' }, 50035, 400, 'PATCH', 'http://x', { body: options.body, files: undefined }),
    );
    const responder = new DiscordResponder({ webhooks: rest, channels: rest }, quiet);
    const error = await responder
      .editOriginal(to, { content: '', files: [{ name: 'flux-1.png', data: Buffer.concat([PNG, Buffer.alloc(100_000)]) }] })
      .then(
        () => undefined,
        (e: unknown) => e as DiscordAPIError,
      );
    expect(error).toBeInstanceOf(DiscordAPIError);
    expect(error!.code).toBe(50035);
    expect(error!.requestBody.json).toMatch(/^\(multipart body of \d+ bytes\)$/);
    expect(JSON.stringify(error).length).toBeLessThan(2000);
  });
});
