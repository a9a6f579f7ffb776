import type { Translation } from '../../translation.js';
import type enUS from '../en-US/common.js';

const common: Translation<typeof enUS> = {
  errors: {
    generic: 'Algo deu errado do lado do bot. Nada foi gerado. (ref. `{{- ref}}`)',
    commandGone: 'Este comando não está mais disponível.',
    buttonGone: 'Este botão não funciona mais.',
    serverNotAllowed: 'Este bot não está disponível neste servidor.',
  },
  cancel: {
    notYours: 'Só quem pediu estas imagens pode cancelá-las.',
    tooLate: 'Tarde demais para cancelar: as imagens já estão sendo geradas (ou já ficaram prontas).',
  },
  storage: {
    unavailable: 'O bot está com problemas do lado dele e não pode aceitar pedidos agora. Nada foi cobrado — tente de novo daqui a um minuto.',
  },
};

export default common;
