import { describe, expect, it } from 'vitest';
import { translator } from '../../../src/i18n/i18n.js';
import {
  autoBlockReason,
  blockReasonIn,
  flagReportText,
  RULES_UNREADABLE,
  scoresForLog,
  scoresText,
  treatmentOf,
  withheldNoticeText,
  type ImageRules,
} from '../../../src/services/generation/flagged-images.js';
import type { ImageVerdict } from '../../../src/services/safety/image-checker.js';

const rules = (over: Partial<ImageRules>): ImageRules => ({ ...RULES_UNREADABLE, ...over });
const flaggedVerdict: ImageVerdict = {
  flagged: true,
  scores: { Porn: 0.8123, Hentai: 0.05, Sexy: 0.1, Drawing: 0.0177, Neutral: 0.02 },
  durationMs: 61.4,
};
const timedOut: ImageVerdict = { flagged: true, failure: 'timeout', durationMs: 15_000 };

describe('what a server does with a flagged image', () => {
  it.each([
    ['spoiler', 'off', false, 'spoiler'],
    ['spoiler', 'age_restricted', false, 'spoiler'],
    ['spoiler', 'off', true, 'spoiler'],
    ['spoiler', 'age_restricted', true, 'as_is'],
    ['block', 'off', false, 'withheld'],
    ['block', 'off', true, 'withheld'],
    ['block', 'age_restricted', true, 'as_is'],
    ['off', 'off', false, 'as_is'],
  ] as const)('image_check %s, nsfw_policy %s, age-restricted channel %s → %s', (action, nsfwPolicy, channelNsfw, expected) => {
    expect(treatmentOf(rules({ action, nsfwPolicy }), channelNsfw)).toBe(expected);
  });

  it('withholds flagged images when the rules cannot be read (fail closed), reporting nowhere', () => {
    expect(treatmentOf(RULES_UNREADABLE, true)).toBe('withheld');
    expect(RULES_UNREADABLE.logChannelId).toBeNull();
  });
});

describe('flag texts', () => {
  it('lists the scores highest first, with two decimals', () => {
    expect(scoresText(flaggedVerdict)).toBe('Porn 0.81 · Sexy 0.10 · Hentai 0.05 · Neutral 0.02 · Drawing 0.02');
  });

  it('says why an image has no scores, and that it counts as flagged', () => {
    expect(scoresText(timedOut)).toBe('not checked: the check timed out (counted as flagged)');
    expect(scoresText({ flagged: true, failure: 'worker_died', durationMs: 1 })).toBe('not checked: the checker crashed (counted as flagged)');
  });

  it('rounds the scores for the log line to three decimals', () => {
    expect(scoresForLog(flaggedVerdict)).toEqual({ Porn: 0.812, Hentai: 0.05, Sexy: 0.1, Drawing: 0.018, Neutral: 0.02 });
    expect(scoresForLog(timedOut)).toBeUndefined();
  });

  it('reports to moderators: member, channel, prompt, each seed with its scores, and the action taken', () => {
    const text = flagReportText(
      { userId: '42', channelId: '77', prompt: 'a *beach*\nat noon', samples: 4 },
      [
        { index: 1, seed: 501, verdict: flaggedVerdict },
        { index: 3, seed: 503, verdict: timedOut },
      ],
      'spoiler',
    );
    expect(text).toBe(
      [
        '🔞 The image check flagged 2 images made for <@42> in <#77>.',
        'Prompt: “a \\*beach\\* at noon”',
        '• image 2 of 4, seed `501`: Porn 0.81 · Sexy 0.10 · Hentai 0.05 · Neutral 0.02 · Drawing 0.02 → **posted as a spoiler**',
        '• image 4 of 4, seed `503`: not checked: the check timed out (counted as flagged) → **posted as a spoiler**',
      ].join('\n'),
    );
  });

  it('tells the member which image was withheld and why, by seed', () => {
    expect(withheldNoticeText([{ index: 0, seed: 9, verdict: flaggedVerdict }], 1)).toBe(
      "🔒 Withheld: your image (seed `9`) — this server withholds images its image check flags as possibly sexual content. It was not posted and not charged. The server's moderators can see the flag.",
    );
    expect(withheldNoticeText([{ index: 2, seed: 12, verdict: timedOut }], 4)).toContain(
      'image 3 (seed `12`) — it could not be checked, and this server withholds what its image check cannot clear.',
    );
  });

  it('gives an automatic block a reason the member can read', () => {
    expect(autoBlockReason(3)).toBe("Automatic: 3 flagged images in one day (this server's limit). A moderator can lift it.");
    expect(autoBlockReason(1)).toContain('1 flagged image in one day');
  });
});

describe('a block’s reason shown to the member', () => {
  it('says the automatic block’s reason (stored in English) in the member’s language, and a moderator’s words as typed', () => {
    const stored = autoBlockReason(3);
    expect(stored).toBe("Automatic: 3 flagged images in one day (this server's limit). A moderator can lift it.");
    expect(blockReasonIn(stored, translator('ja'))).toBe('自動：1 日にフラグ付きの画像が 3 枚（このサーバーの上限）。モデレーターが解除できます。');
    expect(blockReasonIn(stored, translator('en-US'))).toBe(stored);
    expect(blockReasonIn('spam, 3 times', translator('ja'))).toBe('spam, 3 times');
  });
});
