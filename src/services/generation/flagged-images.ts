/**
 * What happens to an image the image check flagged: the server's rules, the treatment they give it in this channel,
 * and the texts for the member and the moderators. Pure: the pipeline does the posting, the usage policy the counting.
 */
import { escapeMarkdown } from 'discord.js';
import { IMAGE_CLASSES, type ImageVerdict } from '../safety/image-checker.js';
import { translator, type Translator } from '../../i18n/i18n.js';

const en = translator('en-US');

/** A server's rules for flagged images, as the usage policy resolves them (a server's own values over the defaults). */
export interface ImageRules {
  action: 'off' | 'spoiler' | 'block';
  nsfwPolicy: 'off' | 'age_restricted';
  logChannelId: string | null;
  logFlaggedImages: boolean;
  /** Flagged images per member per UTC day before an automatic block; 0 = never. */
  flagLimit: number;
}

/**
 * When the rules cannot be read (storage down), flagged images are withheld: the safe side, as every storage failure
 * here fails closed. Nothing is reported or counted then (that needs storage too); the job's log line keeps the scores.
 */
export const RULES_UNREADABLE: ImageRules = { action: 'block', nsfwPolicy: 'off', logChannelId: null, logFlaggedImages: false, flagLimit: 0 };

/** `as_is`: posted like any image (checks off, or an age-restricted channel where the server allows NSFW). */
export type FlagTreatment = 'as_is' | 'spoiler' | 'withheld';

export function treatmentOf(rules: ImageRules, channelNsfw: boolean): FlagTreatment {
  if (rules.action === 'off') return 'as_is';
  if (rules.nsfwPolicy === 'age_restricted' && channelNsfw) return 'as_is';
  return rules.action === 'block' ? 'withheld' : 'spoiler';
}

/** `Porn 0.81 · Hentai 0.05 · …`, highest first; or why there are no scores. */
export function scoresText(verdict: ImageVerdict, t: Translator = en): string {
  if (verdict.failure !== undefined || verdict.scores === undefined)
    return t('imagine:flagged.notChecked', { failure: t(`imagine:flagged.failure.${verdict.failure ?? 'error'}`) });
  const scores = verdict.scores;
  return [...IMAGE_CLASSES]
    .sort((a, b) => scores[b] - scores[a])
    .map((name) => `${name} ${scores[name].toFixed(2)}`)
    .join(' · ');
}

/** Scores rounded for the job's log line (3 decimals say all a reader needs). */
export function scoresForLog(verdict: ImageVerdict): Record<string, number> | undefined {
  if (verdict.scores === undefined) return undefined;
  return Object.fromEntries(Object.entries(verdict.scores).map(([name, score]) => [name, Math.round(score * 1000) / 1000]));
}

export interface FlaggedImage {
  index: number;
  seed: number;
  verdict: ImageVerdict;
}

/**
 * The log-channel report of one job's flagged images: who, where, the prompt, each image's seed, scores and fate. In
 * the server's language (`t`): the moderators read it, nobody interacted with it.
 */
export function flagReportText(
  job: { userId: string; channelId: string; prompt: string; samples: number },
  images: readonly FlaggedImage[],
  treatment: Exclude<FlagTreatment, 'as_is'>,
  t: Translator = en,
): string {
  const prompt = escapeMarkdown(truncate(job.prompt.replace(/\s+/g, ' '), 300));
  const action = t(`imagine:flagged.action.${treatment}`);
  const lines = images.map((image) => {
    const common = { seed: image.seed, scores: scoresText(image.verdict, t), action };
    return job.samples > 1
      ? t('imagine:flagged.reportLineOf', { ...common, n: image.index + 1, total: job.samples })
      : t('imagine:flagged.reportLine', common);
  });
  return [
    t('imagine:flagged.report', { count: images.length, user: `<@${job.userId}>`, channel: `<#${job.channelId}>` }),
    t('imagine:flagged.reportPrompt', { prompt }),
    ...lines,
  ].join('\n');
}

/** What the member is told, privately, about the images withheld from their result. */
export function withheldNoticeText(images: readonly FlaggedImage[], samples: number, t: Translator = en): string {
  const which = images
    .map((image) => (samples > 1 ? t('imagine:flagged.imageN', { n: image.index + 1, seed: image.seed }) : t('imagine:flagged.yourImage', { seed: image.seed })))
    .join(', ');
  const why = images.every((image) => image.verdict.failure !== undefined) ? t('imagine:flagged.whyUnchecked') : t('imagine:flagged.whyFlagged');
  return t('imagine:flagged.withheld', { count: images.length, which, why });
}

/**
 * Why a member was blocked automatically: shown to them (in their language), and stored with the block and in the
 * audit log in English (the record is data, shown again on every refused request).
 */
export function autoBlockReason(limit: number, t: Translator = en): string {
  return t('imagine:flagged.autoBlock', { count: limit });
}

/**
 * A block's stored reason as `t` says it: the automatic block's (stored in English, for the audit log) in `t`'s
 * language; a moderator's own words as they typed them.
 */
export function blockReasonIn(reason: string, t: Translator): string {
  const limit = Number(/\d+/.exec(reason)?.[0]);
  return Number.isSafeInteger(limit) && reason === autoBlockReason(limit) ? autoBlockReason(limit, t) : reason;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
