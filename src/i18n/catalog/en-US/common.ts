/** The core (generic errors, the router, the Cancel button, storage trouble). The source: every other locale translates these keys. */
export default {
  errors: {
    /** The reply to anything that is not a UserFacingError; `ref` is the interaction id (digits). */
    generic: "Something went wrong on the bot's side. Nothing was generated. (ref `{{- ref}}`)",
    commandGone: 'This command is not available any more.',
    buttonGone: 'This button does not work any more.',
    serverNotAllowed: 'This bot is not available in this server.',
  },
  cancel: {
    notYours: 'Only the member who asked for these images can cancel them.',
    tooLate: 'Too late to cancel: the images are already being generated (or are done).',
  },
  storage: {
    unavailable: 'The bot is having trouble on its side and cannot take requests right now. Nothing was charged — try again in a minute.',
  },
} as const;
