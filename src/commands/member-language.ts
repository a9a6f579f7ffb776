/** Which language answers a member's own command: the one the server fixed, else theirs. */
import { UserFacingError, type LocalizedText } from '../errors.js';
import { translator, type Translator } from '../i18n/i18n.js';
import { localeFor, type ServerLanguage } from '../i18n/locales.js';

export function memberLanguage(interaction: { locale: string; guildLocale: string | null }, serverLanguage: ServerLanguage): Translator {
  return translator(localeFor({ memberLocale: interaction.locale, guildLocale: interaction.guildLocale, serverLanguage }, 'member'));
}

/** A UserFacingError whose text is fixed in `t`'s language: the central error reply knows only the member's locale. */
class InLanguage extends UserFacingError {
  override readonly text: LocalizedText;

  constructor(error: UserFacingError, t: Translator) {
    super(error.message, error.code, { cause: error });
    const shown = error.text(t);
    this.text = () => shown;
  }
}

/** The refusal, shown in `t`'s language (the one the server fixed) rather than the member's. */
export function inLanguage(error: UserFacingError, t: Translator): UserFacingError {
  return new InLanguage(error, t);
}

/** Runs `work`; a refusal it throws is shown in `t`'s language. */
export async function answeringIn<T>(t: Translator, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw error instanceof UserFacingError ? inLanguage(error, t) : error;
  }
}
