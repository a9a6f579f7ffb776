import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commandDefinitions } from '../../../src/commands/index.js';

/**
 * The JSON Discord receives for every command, as registered before the admin command was split into files: a change
 * here re-registers the commands in every server (Discord limits creations per day) and changes what members see.
 * Regenerate the fixture only for a deliberate change of a command.
 */
const FIXTURE = new URL('../../fixtures/command-definitions.json', import.meta.url);

describe('registered command definitions', () => {
  it('are byte-identical to the recorded ones', () => {
    expect(`${JSON.stringify(commandDefinitions, null, 2)}\n`).toBe(readFileSync(FIXTURE, 'utf8'));
  });
});
