import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PermissionFlagsBits, PermissionsBitField } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { INVITE_PERMISSION_NAMES, INVITE_PERMISSIONS, inviteUrl } from '../../../src/services/discord/invite.js';

const README = readFileSync(resolve(import.meta.dirname, '../../../README.md'), 'utf8');

describe('invite permissions', () => {
  it('ask for exactly what the bot posts with (view, send also in threads, embeds, files) and reads its starred results with', () => {
    expect(new PermissionsBitField(INVITE_PERMISSIONS).toArray().sort()).toEqual(
      ['AttachFiles', 'EmbedLinks', 'ReadMessageHistory', 'SendMessages', 'SendMessagesInThreads', 'ViewChannel'].sort(),
    );
    expect(INVITE_PERMISSIONS & PermissionFlagsBits.Administrator).toBe(0n);
  });

  it('builds the URL the bot logs with both scopes and those bits', () => {
    const url = new URL(inviteUrl('123456789012345678'));
    expect(url.origin + url.pathname).toBe('https://discord.com/oauth2/authorize');
    expect(url.searchParams.get('client_id')).toBe('123456789012345678');
    expect(url.searchParams.get('scope')).toBe('bot applications.commands');
    expect(BigInt(url.searchParams.get('permissions')!)).toBe(INVITE_PERMISSIONS);
  });

  it("matches README's invite URL and its list of permissions", () => {
    const urls = [...README.matchAll(/https:\/\/discord\.com\/oauth2\/authorize\?[^\s)`>"]+/g)].map((m) => new URL(m[0]));
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) {
      expect(url.searchParams.get('scope')).toBe('bot applications.commands');
      expect(url.searchParams.get('permissions')).toBe(INVITE_PERMISSIONS.toString());
    }
    for (const name of INVITE_PERMISSION_NAMES) expect(README).toContain(`*${name}*`);
  });
});
