import {
  ButtonStyle,
  ComponentType,
  type APIActionRowComponent,
  type APIComponentInMessageActionRow,
} from 'discord.js';
import { translator, type Translator } from '../../i18n/i18n.js';

/** Every result control's custom_id starts with this; the rest is `<action>:<result id>[:<extra>]` (≤ 100 chars). */
export const RESULT_PREFIX = 'res:';

export const RESULT_ACTIONS = ['reroll', 'remix', 'details', 'delete', 'report', 'pick', 'modal'] as const;
export type ResultAction = (typeof RESULT_ACTIONS)[number];

export function resultCustomId(action: ResultAction, id: string, extra?: string): string {
  return `${RESULT_PREFIX}${action}:${id}${extra === undefined ? '' : `:${extra}`}`;
}

/** The ⭐ Share button (a gallery): `share:<result id>`, handled apart from the `res:` controls. */
export const SHARE_PREFIX = 'share:';

export function shareCustomId(id: string): string {
  return `${SHARE_PREFIX}${id}`;
}

export function parseShareCustomId(customId: string): string | undefined {
  return /^share:(\d{1,25})$/.exec(customId)?.[1];
}

/** The extra a private result's controls carry, so their new request is deferred privately before storage is read. */
export const PRIVATE_EXTRA = 'p';

/** Reads a custom_id back; anything forged or malformed gives undefined. */
export function parseResultCustomId(customId: string): { action: ResultAction; id: string; extra?: string } | undefined {
  const match = /^res:([a-z]+):(\d{1,25})(?::([\w-]{1,20}))?$/.exec(customId);
  if (!match) return undefined;
  const action = RESULT_ACTIONS.find((a) => a === match[1]);
  if (!action) return undefined;
  return { action, id: match[2]!, ...(match[3] !== undefined ? { extra: match[3] } : {}) };
}

/** How a result is shown: privately (no Delete, Report or Share: nobody else sees it), and whether a gallery takes it. */
export interface ResultControlsShown {
  private?: boolean;
  /** The server has a gallery channel: offer ⭐ Share (public results only). */
  share?: boolean;
  /** The labels' language: the result's (default English). */
  t?: Translator;
}

/**
 * 🔁 ✏️ 🔍 🗑️ 🚩 under every public result (one row: five is Discord's most per row), ⭐ Share on a row of its own where
 * the server has a gallery, and with several images a menu to remix one of them. A private result has 🔁 ✏️ 🔍 only,
 * their custom_ids marked private. (No "reproduce image N alone": it charged a credit for an image already posted; a
 * remix keeps the seed and lets the member change something.)
 */
export function resultComponents(
  id: string,
  images: ReadonlyArray<{ index: number; seed: number }>,
  shown: ResultControlsShown = {},
): Array<APIActionRowComponent<APIComponentInMessageActionRow>> {
  const extra = shown.private ? PRIVATE_EXTRA : undefined;
  const t = shown.t ?? translator('en-US');
  const button = (action: ResultAction, emoji: string, label: string, marked = false) => ({
    type: ComponentType.Button as const,
    style: ButtonStyle.Secondary as const,
    custom_id: resultCustomId(action, id, marked ? extra : undefined),
    label,
    emoji: { name: emoji },
  });
  const rows: Array<APIActionRowComponent<APIComponentInMessageActionRow>> = [
    {
      type: ComponentType.ActionRow,
      components: shown.private
        ? [button('reroll', '🔁', t('imagine:buttons.reroll'), true), button('remix', '✏️', t('imagine:buttons.remix'), true), button('details', '🔍', t('imagine:buttons.details'))]
        : [
            button('reroll', '🔁', t('imagine:buttons.reroll')),
            button('remix', '✏️', t('imagine:buttons.remix')),
            button('details', '🔍', t('imagine:buttons.details')),
            button('delete', '🗑️', t('imagine:buttons.delete')),
            button('report', '🚩', t('imagine:buttons.report')),
          ],
    },
  ];
  if (shown.share && !shown.private) {
    rows.push({
      type: ComponentType.ActionRow,
      components: [{ type: ComponentType.Button, style: ButtonStyle.Secondary, custom_id: shareCustomId(id), label: t('imagine:buttons.share'), emoji: { name: '⭐' } }],
    });
  }
  if (images.length > 1) {
    rows.push({
      type: ComponentType.ActionRow,
      components: [
        {
          type: ComponentType.StringSelect,
          custom_id: resultCustomId('pick', id, extra),
          placeholder: t('imagine:buttons.pickPlaceholder'),
          options: images.map((image, position) => ({ label: t('imagine:buttons.pickOption', { n: position + 1, seed: image.seed }), value: `remix-${image.index}` })),
        },
      ],
    });
  }
  return rows;
}
