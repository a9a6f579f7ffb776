/**
 * The storage could not be opened as configured. The message is written for the operator (it names STORE_URL and
 * what is wrong) and never contains the password from the URL.
 */
export class StorageConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StorageConfigError';
  }
}
