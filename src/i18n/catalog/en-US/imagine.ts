/** /imagine, policy refusals, queue and progress, results, buttons, gallery. The source: every other locale translates these keys. */
export default {} as const;
