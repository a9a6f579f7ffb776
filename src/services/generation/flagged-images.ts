/**
 * What happens to an image the image check flagged: the server's rules, the treatment they give it in this channel,
 * and the texts for the member and the moderators. Pure: the pipeline does the posting, the usage policy the counting.
 */
import { escapeMarkdown } from 'discord.js';
import { IMAGE_CLASSES, type ImageVerdict } from '../safety/image-checker.js';

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

const FAILURE_TEXT: Record<NonNullable<ImageVerdict['failure']>, string> = {
  error: 'the check failed',
  timeout: 'the check timed out',
  worker_died: 'the checker crashed',
  queue_full: 'the checker was overloaded',
};

/** `Porn 0.81 · Hentai 0.05 · …`, highest first; or why there are no scores. */
export function scoresText(verdict: ImageVerdict): string {
  if (verdict.failure !== undefined || verdict.scores === undefined)
    return `not checked: ${FAILURE_TEXT[verdict.failure ?? 'error']} (counted as flagged)`;
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

const ACTION_TEXT: Record<Exclude<FlagTreatment, 'as_is'>, string> = {
  spoiler: 'posted as a spoiler',
  withheld: 'withheld (not posted, not charged)',
};

/** The log-channel report of one job's flagged images: who, where, the prompt, each image's seed, scores and fate. */
export function flagReportText(
  job: { userId: string; channelId: string; prompt: string; samples: number },
  images: readonly FlaggedImage[],
  treatment: Exclude<FlagTreatment, 'as_is'>,
): string {
  const prompt = escapeMarkdown(truncate(job.prompt.replace(/\s+/g, ' '), 300));
  const lines = images.map(
    (image) =>
      `• ${job.samples > 1 ? `image ${image.index + 1} of ${job.samples}, ` : ''}seed \`${image.seed}\`: ${scoresText(image.verdict)} → **${ACTION_TEXT[treatment]}**`,
  );
  const what = images.length === 1 ? 'an image' : `${images.length} images`;
  return [`🔞 The image check flagged ${what} made for <@${job.userId}> in <#${job.channelId}>.`, `Prompt: “${prompt}”`, ...lines].join('\n');
}

/** What the member is told, privately, about the images withheld from their result. */
export function withheldNoticeText(images: readonly FlaggedImage[], samples: number): string {
  const which = images
    .map((image) => `${samples > 1 ? `image ${image.index + 1}` : 'your image'} (seed \`${image.seed}\`)`)
    .join(', ');
  const why = images.every((image) => image.verdict.failure !== undefined)
    ? 'it could not be checked, and this server withholds what its image check cannot clear'
    : 'this server withholds images its image check flags as possibly sexual content';
  return `🔒 Withheld: ${which} — ${why}. ${images.length === 1 ? 'It was' : 'They were'} not posted and not charged. The server's moderators can see the flag.`;
}

/** Why a member was blocked automatically: shown to them on every refused request, and in the audit log. */
export function autoBlockReason(limit: number): string {
  return `Automatic: ${limit} flagged ${limit === 1 ? 'image' : 'images'} in one day (this server's limit). A moderator can lift it.`;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
