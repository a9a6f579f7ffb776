import type { Translation } from '../../translation.js';
import type enUS from '../en-US/common.js';

const common: Translation<typeof enUS> = {
  errors: {
    generic: 'Algo ha fallado por parte del bot. No se ha generado nada. (ref. `{{- ref}}`)',
    commandGone: 'Este comando ya no está disponible.',
    buttonGone: 'Este botón ya no funciona.',
    serverNotAllowed: 'Este bot no está disponible en este servidor.',
  },
  cancel: {
    notYours: 'Solo quien pidió estas imágenes puede cancelarlas.',
    tooLate: 'Demasiado tarde para cancelar: las imágenes ya se están generando (o ya están listas).',
  },
  storage: {
    unavailable: 'El bot tiene problemas por su parte y ahora mismo no puede aceptar solicitudes. No se ha cobrado nada; vuelve a intentarlo en un minuto.',
  },
};

export default common;
