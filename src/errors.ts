/**
 * The only kind of error whose message a Discord user ever sees. Anything else is logged and answered with a
 * generic message carrying a reference id.
 */
export class UserFacingError extends Error {
  constructor(
    message: string,
    readonly code: string = 'user_error',
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'UserFacingError';
  }
}
