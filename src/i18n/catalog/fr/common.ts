import type { Translation } from '../../translation.js';
import type enUS from '../en-US/common.js';

const common: Translation<typeof enUS> = {
  errors: {
    generic: 'Un problème est survenu du côté du bot. Rien n’a été généré. (réf. `{{- ref}}`)',
    commandGone: 'Cette commande n’est plus disponible.',
    buttonGone: 'Ce bouton ne fonctionne plus.',
    serverNotAllowed: 'Ce bot n\'est pas disponible sur ce serveur.',
  },
  cancel: {
    notYours: 'Seul le membre qui a demandé ces images peut les annuler.',
    tooLate: 'Trop tard pour annuler : les images sont déjà en cours de génération (ou terminées).',
  },
  storage: {
    unavailable: 'Le bot rencontre un problème de son côté et ne peut pas prendre de demandes pour le moment. Rien n’a été décompté — réessaie dans une minute.',
  },
};

export default common;
