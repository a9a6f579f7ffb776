import type { FluxDevParams } from '../segmind/flux-params.js';
import type { AppliedStyle } from '../results/result-store.js';

export type { AppliedStyle } from '../results/result-store.js';

/** Parameters a member may leave to a preference or a style: cut to the server's limits (with a note) instead of refused. */
export type AdjustableParam = 'samples' | 'steps';

/**
 * The one request type every way into generation produces (`/imagine` today; buttons and remixes later), and
 * everything downstream (policy, queue, Segmind, delivery, credits) consumes.
 */
export interface ImagineRequest {
  /** The interaction id: correlation id in logs, and the key of everything this request owns. */
  id: string;
  userId: string;
  guildId: string | null;
  channelId: string;
  params: FluxDevParams;
  /** When Discord created the interaction (epoch ms). */
  createdAt: number;
  /** After this the interaction token is dead: the original reply can no longer be edited. */
  tokenExpiresAt: number;
  /** Largest file this interaction may upload, from Discord's `attachment_size_limit`. */
  attachmentSizeLimit: number;
  /** The server style whose expansion `params.prompt` is. */
  style?: AppliedStyle | undefined;
  /** Only the member sees the waiting message and the result (the server must allow it). */
  private?: boolean | undefined;
  /** Parameters the member did not type, which the server's limits cut rather than refuse. */
  adjustable?: readonly AdjustableParam[] | undefined;
}

/** Discord interaction tokens live 15 minutes. */
export const INTERACTION_TOKEN_LIFETIME_MS = 15 * 60_000;
