import type { Translation } from '../../translation.js';
import type enUS from '../en-US/common.js';

const common: Translation<typeof enUS> = {
  errors: {
    generic: 'Auf Seiten des Bots ist etwas schiefgelaufen. Es wurde nichts generiert. (Ref. `{{- ref}}`)',
    commandGone: 'Dieser Befehl ist nicht mehr verfügbar.',
    buttonGone: 'Diese Schaltfläche funktioniert nicht mehr.',
    serverNotAllowed: 'Dieser Bot ist auf diesem Server nicht verfügbar.',
  },
  cancel: {
    notYours: 'Nur das Mitglied, das diese Bilder angefordert hat, kann sie abbrechen.',
    tooLate: 'Zu spät zum Abbrechen: Die Bilder werden bereits generiert (oder sind schon fertig).',
  },
  storage: {
    unavailable: 'Der Bot hat gerade Probleme und kann im Moment keine Anfragen annehmen. Es wurde nichts berechnet – versuche es in einer Minute erneut.',
  },
};

export default common;
