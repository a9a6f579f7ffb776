/**
 * `/imagine-admin`, the moderators' command: its Discord definition (assembled from the subjects' pieces, in the order
 * Discord shows them), the permission check and the dispatch to one handler per subcommand.
 *
 * The folder owns everything moderators can change or read about /imagine in their server, one file per subject
 * (settings, credits, roles, blocks, channels, words, styles, pause, usage, audit). The subjects share `handler.ts` (what a
 * handler is given and how a change reaches the settings and the audit log), `options.ts` and `format.ts`; they never
 * import this file or each other. Like every command, it may import the services and what lies below them, never the
 * reverse.
 */
import {
  ApplicationCommandOptionType,
  ApplicationIntegrationType,
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  type AutocompleteInteraction,
  type ChatInputCommandInteraction,
  type CommandInteractionOption,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { UserFacingError } from '../../errors.js';
import { translator, type Translator } from '../../i18n/i18n.js';
import { localeFor } from '../../i18n/locales.js';
import type { Logger } from '../../logger.js';
import type { GuildSettings } from '../../services/usage/guild-settings.js';
import { parseOptionList } from '../options.js';
import { memberContextOf } from '../member-context.js';
import type { SlashCommand } from '../types.js';
import { auditHandlers, auditSubcommand } from './audit.js';
import { blockGroup, blockHandlers } from './blocks.js';
import { channelsAutocomplete, channelsGroup, channelsHandlers } from './channels.js';
import { creditsGroup, creditsHandlers } from './credits.js';
import { fitReply } from './format.js';
import { createAdminTools, FixedLanguageRefusal, type AdminDeps, type AdminHandler, type Autocompleter, type PathOf } from './handler.js';
import { pauseHandlers, pauseSubcommands } from './pause.js';
import { roleAutocomplete, roleGroup, roleHandlers } from './roles.js';
import { settingsAutocomplete, settingsGroup, settingsHandlers } from './settings.js';
import { stylesAutocomplete, stylesGroup, stylesHandlers } from './styles.js';
import { usageHandlers, usageSubcommand } from './usage.js';
import { wordsGroup, wordsHandlers } from './words.js';

export type { AdminDeps, AdminHandler } from './handler.js';

// ---------------------------------------------------------------------------------------------------------------------
// Definition

export const definition = {
  name: 'imagine-admin',
  description: 'Moderator controls for /imagine in this server',
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
  default_member_permissions: PermissionFlagsBits.ManageGuild.toString(),
  options: [settingsGroup, creditsGroup, roleGroup, blockGroup, channelsGroup, wordsGroup, stylesGroup, ...pauseSubcommands, usageSubcommand, auditSubcommand],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

type TopOption = (typeof definition.options)[number];
/** `group/subcommand` or `subcommand`, derived from the definition so the handler table must cover every one. */
export type AdminPath = PathOf<TopOption>;

// ---------------------------------------------------------------------------------------------------------------------
// Reading the chosen subcommand and its options

/** Walks group → subcommand in the options Discord sent; returns `group/sub` (or `sub`) and the leaf options. */
export function selectedSubcommand(data: readonly CommandInteractionOption[]): {
  path: string;
  options: readonly CommandInteractionOption[];
} {
  const first = data[0];
  if (first?.type === ApplicationCommandOptionType.SubcommandGroup) {
    const sub = first.options?.[0];
    if (sub?.type === ApplicationCommandOptionType.Subcommand) return { path: `${first.name}/${sub.name}`, options: sub.options ?? [] };
  } else if (first?.type === ApplicationCommandOptionType.Subcommand) {
    return { path: first.name, options: first.options ?? [] };
  }
  throw new UserFacingError((t) => t('admin:guard.pickSubcommand'), 'invalid_options');
}

/** Like parseOptions, for a subcommand's options. */
export const parseSubcommandOptions = parseOptionList;

// ---------------------------------------------------------------------------------------------------------------------
// Handlers

export function createAdminHandlers(deps: AdminDeps): Record<AdminPath, AdminHandler> {
  const tools = createAdminTools(deps);
  return {
    ...settingsHandlers(deps, tools),
    ...creditsHandlers(deps, tools),
    ...roleHandlers(tools),
    ...blockHandlers(deps, tools),
    ...channelsHandlers(deps, tools),
    ...wordsHandlers(tools),
    ...stylesHandlers(deps, tools),
    ...pauseHandlers(deps, tools),
    ...usageHandlers(deps, tools),
    ...auditHandlers(deps),
  };
}

/** The options that autocomplete, by subcommand: the server language, values stored in the settings (some of which Discord no longer knows), styles. */
const autocompletersFor = (deps: AdminDeps): Partial<Record<AdminPath, Autocompleter>> => ({
  ...settingsAutocomplete,
  ...channelsAutocomplete,
  ...roleAutocomplete,
  ...stylesAutocomplete(deps),
});

// ---------------------------------------------------------------------------------------------------------------------

export function createImagineAdminCommand(deps: AdminDeps): SlashCommand {
  const handlers = new Map<string, AdminHandler>(Object.entries(createAdminHandlers(deps)));
  const autocompleters = autocompletersFor(deps);
  return {
    definition,
    /** Offers what is stored to moderators only (nothing to anyone else): suggestions must not leak settings. */
    async autocomplete(interaction: AutocompleteInteraction) {
      if (!interaction.inGuild()) return interaction.respond([]);
      const { path } = selectedSubcommand(interaction.options.data);
      const complete = autocompleters[path as AdminPath];
      const settings = await deps.settings.get(interaction.guildId);
      const member = interaction.member;
      const roleIds = Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()];
      const moderator = deps.policy.isModerator({ roleIds, canManageGuild: interaction.memberPermissions.has(PermissionFlagsBits.ManageGuild) }, settings);
      const typed = String(interaction.options.getFocused());
      const choices = complete && moderator ? await complete({ interaction, settings, typed }) : [];
      await interaction.respond(choices.slice(0, 25));
    },
    async execute(interaction, log) {
      if (!interaction.inGuild()) throw new UserFacingError((t) => t('admin:guard.serversOnly'));
      // default_member_permissions only hides the command, and server admins can change who sees it: check again.
      const settings = await deps.settings.get(interaction.guildId);
      const t = translator(localeFor({ memberLocale: interaction.locale, guildLocale: interaction.guildLocale, serverLanguage: settings.language }, 'member'));
      try {
        await run(interaction, settings, t, log);
      } catch (error) {
        if (error instanceof UserFacingError && settings.language !== 'auto') throw new FixedLanguageRefusal(error, t);
        throw error;
      }
    },
  };

  async function run(interaction: ChatInputCommandInteraction<'cached' | 'raw'>, settings: GuildSettings, t: Translator, log: Logger): Promise<void> {
    if (!deps.policy.isModerator(memberContextOf(interaction), settings)) throw new UserFacingError((t) => t('admin:guard.notModerator'), 'not_moderator');
    const { path, options } = selectedSubcommand(interaction.options.data);
    const selected = handlers.get(path);
    if (!selected) throw new UserFacingError((t) => t('admin:guard.unknownSubcommand'), 'unknown_subcommand');
    const parsed = parseSubcommandOptions(selected.schema, options);
    // Storage reads and the log-channel post may take a moment: acknowledge inside Discord's 3 s first.
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    log.debug({ subcommand: path }, 'moderator command');
    const reply = await selected.run(
      { interaction, guildId: interaction.guildId, actorId: interaction.user.id, guildLocale: interaction.guildLocale, t, settings, options },
      parsed,
    );
    const { content, files } = typeof reply === 'string' ? { content: reply, files: [] } : reply;
    await interaction.editReply({
      content: fitReply(content),
      ...(files.length > 0 ? { files: files.map((file) => ({ attachment: file.data, name: file.name })) } : {}),
      allowedMentions: { parse: [] },
    });
  }
}
