/** Command, option and choice descriptions shown in Discord's command picker. The source: every other locale translates these keys. */
export default {} as const;
