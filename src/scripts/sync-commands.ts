// Registers the slash commands without starting the bot: `npm run commands`.
import { existsSync } from 'node:fs';
import { REST, Routes, type APIApplication } from 'discord.js';
import { commandDefinitions } from '../commands/index.js';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { syncCommands } from '../services/discord/command-sync.js';

if (existsSync('.env')) process.loadEnvFile('.env');

try {
  const config = loadConfig(process.env);
  const logger = createLogger({ level: config.LOG_LEVEL, secrets: [config.DISCORD_TOKEN, config.SEGMIND_API_KEY] });
  const rest = new REST({ api: config.DISCORD_API_URL }).setToken(config.DISCORD_TOKEN);
  const application = (await rest.get(Routes.currentApplication())) as APIApplication;
  const result = await syncCommands({
    rest,
    applicationId: application.id,
    guildId: config.DISCORD_GUILD_ID,
    definitions: commandDefinitions,
    log: logger,
  });
  console.log(
    result === 'updated'
      ? `Registered ${commandDefinitions.length} command(s) ${config.DISCORD_GUILD_ID ? `in guild ${config.DISCORD_GUILD_ID}` : 'globally (may take up to an hour to appear)'}.`
      : 'Commands are already up to date; nothing was sent.',
  );
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : `Could not sync commands: ${(error as Error).message}`);
  process.exitCode = 1;
}
