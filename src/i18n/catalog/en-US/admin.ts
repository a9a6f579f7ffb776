/** /imagine-admin and log-channel posts. The source: every other locale translates these keys. */
export default {} as const;
