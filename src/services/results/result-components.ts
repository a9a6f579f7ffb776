import {
  ButtonStyle,
  ComponentType,
  type APIActionRowComponent,
  type APIComponentInMessageActionRow,
} from 'discord.js';

/** Every result control's custom_id starts with this; the rest is `<action>:<result id>[:<extra>]` (≤ 100 chars). */
export const RESULT_PREFIX = 'res:';

export const RESULT_ACTIONS = ['reroll', 'remix', 'details', 'delete', 'report', 'pick', 'modal'] as const;
export type ResultAction = (typeof RESULT_ACTIONS)[number];

export function resultCustomId(action: ResultAction, id: string, extra?: string): string {
  return `${RESULT_PREFIX}${action}:${id}${extra === undefined ? '' : `:${extra}`}`;
}

/** Reads a custom_id back; anything forged or malformed gives undefined. */
export function parseResultCustomId(customId: string): { action: ResultAction; id: string; extra?: string } | undefined {
  const match = /^res:([a-z]+):(\d{1,25})(?::([\w-]{1,20}))?$/.exec(customId);
  if (!match) return undefined;
  const action = RESULT_ACTIONS.find((a) => a === match[1]);
  if (!action) return undefined;
  return { action, id: match[2]!, ...(match[3] !== undefined ? { extra: match[3] } : {}) };
}

/**
 * 🔁 ✏️ 🔍 🗑️ 🚩 under every result (one row: five is Discord's most per row), and with several images a menu to remix
 * one of them. (No "reproduce image N alone": it charged a credit for an image already posted; a remix keeps the
 * seed and lets the member change something.)
 */
export function resultComponents(
  id: string,
  images: ReadonlyArray<{ index: number; seed: number }>,
): Array<APIActionRowComponent<APIComponentInMessageActionRow>> {
  const button = (action: ResultAction, emoji: string, label: string, style = ButtonStyle.Secondary) => ({
    type: ComponentType.Button as const,
    style: style as ButtonStyle.Secondary,
    custom_id: resultCustomId(action, id),
    label,
    emoji: { name: emoji },
  });
  const rows: Array<APIActionRowComponent<APIComponentInMessageActionRow>> = [
    {
      type: ComponentType.ActionRow,
      components: [
        button('reroll', '🔁', 'Re-roll'),
        button('remix', '✏️', 'Remix'),
        button('details', '🔍', 'Details'),
        button('delete', '🗑️', 'Delete'),
        button('report', '🚩', 'Report'),
      ],
    },
  ];
  if (images.length > 1) {
    rows.push({
      type: ComponentType.ActionRow,
      components: [
        {
          type: ComponentType.StringSelect,
          custom_id: resultCustomId('pick', id),
          placeholder: 'Remix one image…',
          options: images.map((image, position) => ({ label: `✏️ Remix image ${position + 1} (seed ${image.seed})`, value: `remix-${image.index}` })),
        },
      ],
    });
  }
  return rows;
}
