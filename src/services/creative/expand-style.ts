/** The longest prompt sent to Segmind: a style's expansion over it is refused (privately, before anything is charged). */
export const MAX_EXPANDED_PROMPT = 2000;

/**
 * The member's prompt in a style's template: at every `{prompt}`, or appended after a comma when the template has none.
 * split/join rather than replaceAll: a prompt's `$&` must stay text, not become a replacement pattern.
 */
export function expandStyle(template: string, prompt: string): string {
  return template.includes('{prompt}') ? template.split('{prompt}').join(prompt) : `${template}, ${prompt}`;
}
