import { afterEach, describe, expect, it } from 'vitest';
import { commandDefinitions } from '../../src/commands/index.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('slash command registration at start-up', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('registers the commands globally on a fresh application, then leaves them alone on restart', async () => {
    h = await startHarness();
    expect(h.discord.commandPuts).toHaveLength(1);
    expect(h.discord.commandPuts[0]!.guildId).toBeUndefined();
    expect(h.discord.commandPuts[0]!.body).toEqual(commandDefinitions);

    await h.restartBot();
    await h.restartBot();
    expect(h.discord.commandPuts).toHaveLength(1);
    expect(h.logs.filter((l) => l.msg === 'slash commands already up to date')).toHaveLength(2);
  });

  it('registers in one guild when DISCORD_GUILD_ID is set', async () => {
    h = await startHarness({ env: { DISCORD_GUILD_ID: '123456789012345678' } });
    expect(h.discord.commandPuts).toHaveLength(1);
    expect(h.discord.commandPuts[0]!.guildId).toBe('123456789012345678');
    expect(h.discord.registeredCommands('123456789012345678')).toHaveLength(commandDefinitions.length);
    expect(h.discord.registeredCommands()).toHaveLength(0);
  });

  it('updates commands whose definition changed', async () => {
    h = await startHarness({
      beforeStart: ({ discord }) =>
        discord.setRegisteredCommands(
          commandDefinitions.map((c) => ({ ...c, description: 'an outdated description' })),
        ),
    });
    expect(h.discord.commandPuts).toHaveLength(1);
    // Context-menu commands have no description: Discord keeps an empty one.
    expect(h.discord.registeredCommands()).toMatchObject(commandDefinitions.map((c) => ({ description: 'description' in c ? c.description : '' })));
  });

  it('skips the sync when SYNC_COMMANDS_ON_START=false', async () => {
    h = await startHarness({ env: { SYNC_COMMANDS_ON_START: 'false' } });
    expect(h.discord.commandPuts).toHaveLength(0);
    expect(h.discord.requests.some((r) => r.path.includes('/commands'))).toBe(false);
  });
});
