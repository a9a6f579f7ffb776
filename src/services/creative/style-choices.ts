import { NO_STYLE, type ServerStyles } from './style-store.js';

/** Discord shows at most 25 suggestions, each name at most 100 characters. */
const MAX_CHOICES = 25;
const MAX_CHOICE_NAME = 100;

export const NO_STYLE_CHOICE = { name: `${NO_STYLE} — no style, not even the channel's default`, value: NO_STYLE } as const;

/**
 * Suggestions for a `style` option: `none` first, then the server's styles whose name contains what is typed (their
 * description alongside).
 */
export function styleChoices(styles: ServerStyles, typed: string): Array<{ name: string; value: string }> {
  const needle = typed.trim().toLowerCase();
  const matching = styles.styles
    .filter((style) => style.name.toLowerCase().includes(needle))
    .map((style) => ({ name: fit(style.description ? `${style.name} — ${style.description}` : style.name), value: style.name }));
  const offerNone = NO_STYLE.includes(needle);
  return [...(offerNone ? [NO_STYLE_CHOICE] : []), ...matching].slice(0, MAX_CHOICES);
}

function fit(name: string): string {
  return name.length <= MAX_CHOICE_NAME ? name : `${name.slice(0, MAX_CHOICE_NAME - 1)}…`;
}
