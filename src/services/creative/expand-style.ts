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
 * The prompt Segmind gets for a style, for `/imagine` and a remix alike; refused when it would be too long.
 * `canDropStyle`: the member can also retry with `style:none` (`/imagine` can, a remix form cannot).
 */
export function expandWithinLimit(style: { name: string; template: string }, prompt: string, canDropStyle = false): string {
  const expanded = expandStyle(style.template, prompt);
  if (expanded.length > MAX_EXPANDED_PROMPT) {
    const vars = { style: codeSpan(style.name), length: expanded.length, max: MAX_EXPANDED_PROMPT };
    throw new UserFacingError(
      (t) => (canDropStyle ? t('imagine:refusal.promptTooLongDropStyle', vars) : t('imagine:refusal.promptTooLong', vars)),
      'prompt_too_long',
    );
  }
  return expanded;
}

/** A name shown inside a `code span`: markdown is not read there, so only a backtick could end it early. */
export function codeSpan(text: string): string {
  return text.replace(/`/g, 'ˋ');
}
