import { Writable } from 'node:stream';
import { REST } from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, parseWebhookUrl } from '../../../src/config.js';
import { createLogger } from '../../../src/logger.js';
import { OperatorAlerts } from '../../../src/services/discord/operator-alerts.js';
import { FakeDiscord } from '../../fakes/fake-discord.js';

let discord: FakeDiscord;
let rest: REST;
beforeAll(async () => {
  discord = await FakeDiscord.start();
  rest = new REST({ api: discord.apiUrl, retries: 0, timeout: 2_000 });
});
afterAll(async () => {
  rest.clearHashSweeper();
  rest.clearHandlerSweeper();
  await discord.stop();
});

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  let raw = '';
  const logger = createLogger({
    level: 'info',
    secrets: [],
    destination: new Writable({
      write(chunk: Buffer, _e, done) {
        raw += chunk.toString();
        for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  });
  return { logger, lines, raw: () => raw };
}

describe('OperatorAlerts', () => {
  it('posts the alert to the webhook with ?wait=true and no mentions, and logs it', async () => {
    const hook = discord.createWebhook();
    const { logger, lines } = capture();
    const alerts = new OperatorAlerts({ rest, webhook: parseWebhookUrl(hook.url, discord.apiUrl)!, logger });
    const before = discord.webhookExecutions().length;
    await alerts.send('generation_paused', '⚠️ paused: @everyone look');
    const executions = discord.webhookExecutions().slice(before);
    expect(executions).toHaveLength(1);
    expect(executions[0]).toMatchObject({ id: hook.id, token: hook.token, body: { content: '⚠️ paused: @everyone look', allowed_mentions: { parse: [] } } });
    expect(executions[0]!.query.get('wait')).toBe('true');
    expect(lines).toContainEqual(expect.objectContaining({ alert: 'generation_paused', webhook: true, msg: 'operator alert: ⚠️ paused: @everyone look' }));
  });

  it('without a webhook, only logs the alert', async () => {
    const { logger, lines } = capture();
    const before = discord.requests.length;
    await new OperatorAlerts({ rest, logger }).send('low_balance', 'balance low');
    expect(discord.requests.length).toBe(before);
    expect(lines).toEqual([expect.objectContaining({ alert: 'low_balance', webhook: false, msg: 'operator alert: balance low' })]);
  });

  it('never throws when the webhook fails, and logs the failure without the token', async () => {
    const hook = discord.createWebhook();
    const { logger, lines, raw } = capture();
    const wrongToken = { id: hook.id, token: `${hook.token}x` };
    await expect(new OperatorAlerts({ rest, webhook: wrongToken, logger }).send('storage_down', 'down')).resolves.toBeUndefined();
    discord.failNext({ method: 'POST', path: /^\/webhooks\// }, { status: 500, body: { code: 0, message: 'boom' } });
    await expect(new OperatorAlerts({ rest, webhook: hook, logger }).send('storage_down', 'down')).resolves.toBeUndefined();
    const failures = lines.filter((l) => l.msg === 'could not post the operator alert to OPERATOR_WEBHOOK_URL');
    expect(failures.map((l) => l.status)).toEqual([401, 500]);
    expect(raw()).not.toContain(hook.token);
  });

  it('alerts once when storage stops answering and once when it is back, not for every failed sweep', async () => {
    const hook = discord.createWebhook();
    const alerts = new OperatorAlerts({ rest, webhook: hook, logger: capture().logger });
    const mine = () => discord.webhookExecutions().filter((e) => e.id === hook.id).map((e) => (e.body as { content: string }).content);
    await alerts.storageAnswered(true);
    await alerts.storageAnswered(false, 'ECONNREFUSED');
    await alerts.storageAnswered(false, 'ECONNREFUSED');
    await alerts.storageAnswered(false);
    expect(mine()).toHaveLength(1);
    expect(mine()[0]).toContain('Storage is not answering** (ECONNREFUSED)');
    await alerts.storageAnswered(true);
    await alerts.storageAnswered(true);
    expect(mine()).toHaveLength(2);
    expect(mine()[1]).toContain('Storage is back');
    await alerts.storageAnswered(false);
    expect(mine()).toHaveLength(3);
  });
});

describe('OPERATOR_WEBHOOK_URL', () => {
  const valid = { DISCORD_TOKEN: 'x'.repeat(60), SEGMIND_API_KEY: 'SG_0123456789' };
  const token = 'AbC-dEf_0123456789ghijKLMNOP';

  it("accepts Discord's webhook URLs and the same path under DISCORD_API_URL", () => {
    const api = 'https://discord.com/api';
    expect(parseWebhookUrl(`https://discord.com/api/webhooks/123456789012345678/${token}`, api)).toEqual({ id: '123456789012345678', token });
    expect(parseWebhookUrl(`https://ptb.discordapp.com/api/v10/webhooks/123456789012345678/${token}/`, api)?.id).toBe('123456789012345678');
    expect(parseWebhookUrl(`http://127.0.0.1:5000/api/webhooks/123456789012345678/${token}`, 'http://127.0.0.1:5000/api')?.token).toBe(token);
    expect(parseWebhookUrl(`http://127.0.0.1:5000/api/webhooks/123456789012345678/${token}`, api)).toBeUndefined();
    expect(parseWebhookUrl(`https://evil.example/api/webhooks/123456789012345678/${token}`, api)).toBeUndefined();
    expect(parseWebhookUrl('https://discord.com/api/webhooks/123/x', api)).toBeUndefined();
    expect(loadConfig({ ...valid, OPERATOR_WEBHOOK_URL: `https://discord.com/api/webhooks/123456789012345678/${token}` }).OPERATOR_WEBHOOK_URL).toContain(token);
  });

  it('refuses anything else at start-up without printing the URL (its token is a secret)', () => {
    let message = '';
    try {
      loadConfig({ ...valid, OPERATOR_WEBHOOK_URL: `https://example.com/hooks/${token}` });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('OPERATOR_WEBHOOK_URL must be a Discord webhook URL');
    expect(message).not.toContain(token);
  });
});
