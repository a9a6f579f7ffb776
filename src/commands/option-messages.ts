import type { Translator } from '../i18n/i18n.js';

/**
 * What an option check says about a value: English in the zod schemas (the error's `message`, for logs), and in the
 * member's language through `optionMessageIn`. The schemas build their messages with these, so every English text
 * here has its translation; a message from elsewhere passes through unchanged.
 */
export const OPTION_MESSAGES = {
  number: 'must be a number',
  between: (min: number, max: number) => `must be between ${min} and ${max}`,
  whole: 'must be a whole number',
  required: 'is required',
  empty: 'is empty',
  tooLong: (max: number) => `is longer than ${max} characters`,
  control: 'contains control characters (line breaks, tabs…)',
  oneOf: (values: readonly string[]) => `must be one of ${values.join(', ')}`,
  text: 'must be text',
  boolean: 'must be true or false',
  discordId: 'must be a Discord id',
  notSetting: 'is not a setting',
  styleNoneReserved: '`none` is reserved: it means no style',
} as const;

const FIXED: Record<string, (t: Translator) => string> = {
  [OPTION_MESSAGES.number]: (t) => t('imagine:validation.number'),
  [OPTION_MESSAGES.whole]: (t) => t('imagine:validation.whole'),
  [OPTION_MESSAGES.required]: (t) => t('imagine:validation.required'),
  [OPTION_MESSAGES.empty]: (t) => t('imagine:validation.empty'),
  [OPTION_MESSAGES.control]: (t) => t('imagine:validation.control'),
  [OPTION_MESSAGES.text]: (t) => t('imagine:validation.text'),
  [OPTION_MESSAGES.boolean]: (t) => t('imagine:validation.boolean'),
  [OPTION_MESSAGES.discordId]: (t) => t('imagine:validation.discordId'),
  [OPTION_MESSAGES.notSetting]: (t) => t('imagine:validation.notSetting'),
  [OPTION_MESSAGES.styleNoneReserved]: (t) => t('imagine:validation.styleNoneReserved'),
};

/** `message` (one of OPTION_MESSAGES) in `t`'s language; any other message as it is. */
export function optionMessageIn(message: string, t: Translator): string {
  const fixed = FIXED[message];
  if (fixed) return fixed(t);
  const between = /^must be between (\S+) and (\S+)$/.exec(message);
  if (between) return t('imagine:validation.between', { min: between[1]!, max: between[2]! });
  const tooLong = /^is longer than (\d+) characters$/.exec(message);
  if (tooLong) return t('imagine:validation.tooLong', { max: tooLong[1]! });
  const oneOf = /^must be one of (.+)$/.exec(message);
  if (oneOf) return t('imagine:validation.oneOf', { values: oneOf[1]! });
  return message;
}

/** The bulleted list of what is wrong, one line per option (`• \`steps\`: …`), in `t`'s language. */
export function invalidOptionLines(issues: ReadonlyArray<{ path: readonly PropertyKey[]; message: string }>, t: Translator): string {
  return issues
    .map((issue) => {
      const name = issue.path.map(String).join('.');
      const message = optionMessageIn(issue.message, t);
      return name ? `• \`${name}\`: ${message}` : `• ${message}`;
    })
    .join('\n');
}
