/** /credits, /preferences, generation info. The source: every other locale translates these keys. */
export default {} as const;
