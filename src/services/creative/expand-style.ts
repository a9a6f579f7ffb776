import { UserFacingError } from '../../errors.js';

/** The longest prompt sent to Segmind: a style's expansion over it is refused (privately, before anything is charged). */
export const MAX_EXPANDED_PROMPT = 2000;

/**
 * The member's prompt in a style's template: at every `{prompt}`, or appended after a comma when the template has none.
 * split/join rather than replaceAll: a prompt's `$&` must stay text, not become a replacement pattern.
 */
export function expandStyle(template: string, prompt: string): string {
  return template.includes('{prompt}') ? template.split('{prompt}').join(prompt) : `${template}, ${prompt}`;
}

/**
 * The prompt Segmind gets for a style, for `/imagine` and a remix alike; refused when it would be too long. `retry`
 * says what else the member can do where they are (`/imagine` can drop the style, a remix form cannot).
 */
export function expandWithinLimit(style: { name: string; template: string }, prompt: string, retry = 'Shorten your prompt'): string {
  const expanded = expandStyle(style.template, prompt);
  if (expanded.length > MAX_EXPANDED_PROMPT)
    throw new UserFacingError(
      `With the style \`${style.name}\` your prompt becomes ${expanded.length} characters, over the ${MAX_EXPANDED_PROMPT} the image service takes. ${retry}. Nothing was charged.`,
      'prompt_too_long',
    );
  return expanded;
}
