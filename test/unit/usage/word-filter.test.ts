import { describe, expect, it } from 'vitest';
import { findBrokenRule, normalizeWords } from '../../../src/services/usage/word-filter.js';

describe('banned word matching', () => {
  const rules = ['nsfw', 'gore', 'porn*', 'blood bath'];

  it.each([
    ['a NSFW painting', 'nsfw'],
    ['an n.s.f.w painting', 'nsfw'],
    ['an n-s-f-w painting', 'nsfw'],
    ['an n s f w painting', 'nsfw'],
    ['ｎｓｆｗ fullwidth', 'nsfw'],
    ['nѕfw with a Cyrillic dze', 'nsfw'],
    ['n\u200bs\u200bf\u200bw zero-width', 'nsfw'],
    ['gōre with a macron', 'gore'],
    ['g0r3 leetspeak', 'gore'],
    ['goooore repeated letters', 'gore'],
    ['pornographic poster', 'porn*'],
    ['a BLOOD   BATH scene', 'blood bath'],
    ['a b100d bath scene', 'blood bath'],
  ])('catches %j', (prompt, rule) => {
    expect(findBrokenRule(prompt, rules)).toBe(rule);
  });

  it.each([
    'a classic gorilla in the mist',
    'a bloody mary cocktail',
    'a bath full of flowers',
    'snowfall over the fjord',
    'a red fox, 4k, highly detailed',
  ])('lets %j through', (prompt) => {
    expect(findBrokenRule(prompt, rules)).toBeUndefined();
  });

  it('folds look-alikes the same way for rules and prompts', () => {
    expect(normalizeWords('Lingerie')).toEqual(normalizeWords('1ingerie'));
    expect(normalizeWords('Crème brûlée')).toEqual(['creme', 'bruiee']);
  });

  describe('rules with a doubled letter match whole words only', () => {
    it.each([
      ['painted as a fresco', 'ass'],
      ['a castle as seen from the sea', 'ass'],
      ['portrait of Bob', 'boob'],
      ['a pop art poster', 'poop'],
    ])('lets %j through a rule %j', (prompt, rule) => {
      expect(findBrokenRule(prompt, [rule])).toBeUndefined();
    });

    it.each([
      ['a s s', 'ass'],
      ['aaass', 'ass'],
      ['a.s.s and more', 'ass'],
      ['@$$', 'ass'],
      ['boooobs', 'boob*'],
      ['b o o b', 'boob'],
      ['poooop emoji', 'poop'],
    ])('still catches the disguised %j with %j', (prompt, rule) => {
      expect(findBrokenRule(prompt, [rule])).toBe(rule);
    });
  });

  it('reports the rule as the moderator wrote it', () => {
    expect(findBrokenRule('ultra NSFW', ['  NSFW '])).toBe('NSFW');
  });
});
