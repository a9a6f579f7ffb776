import { translator, type Translator } from './i18n/i18n.js';

/**
 * A text for a member, in whatever language they are answered in: `(t) => t('common:storage.unavailable')`. A function
 * rather than a key and its values, so the key and the values it needs are checked by the typecheck where it is written.
 */
export type LocalizedText = (t: Translator) => string;

/**
 * The only kind of error whose message a Discord user ever sees. Anything else is logged and answered with a
 * generic message carrying a reference id. Given a LocalizedText, `message` is its en-US wording (for logs, and for
 * code that has no locale at hand) and `text(t)` is what the member reads, with `t` for their language.
 */
export class UserFacingError extends Error {
  readonly text: LocalizedText;

  constructor(
    message: string | LocalizedText,
    readonly code: string = 'user_error',
    options?: ErrorOptions,
  ) {
    super(typeof message === 'string' ? message : message(translator('en-US')), options);
    this.name = 'UserFacingError';
    // A plain string predates the catalogs: shown as written, in every language.
    this.text = typeof message === 'string' ? () => message : message;
  }
}
