/**
 * The shape a translation of an en-US catalog file must have: the same keys (a missing or stray one fails the
 * typecheck), any string as a value. A plural family (`x_one`/`x_other` in en-US) needs `x_other` everywhere; its other
 * forms are optional here because languages need different ones — test/unit/i18n/catalogs.test.ts checks that each
 * locale has exactly the forms its Intl.PluralRules uses.
 */
type PluralCategory = 'zero' | 'one' | 'two' | 'few' | 'many' | 'other';

type PluralBase<K> = K extends `${infer B}_zero`
  ? B
  : K extends `${infer B}_one`
    ? B
    : K extends `${infer B}_two`
      ? B
      : K extends `${infer B}_few`
        ? B
        : K extends `${infer B}_many`
          ? B
          : K extends `${infer B}_other`
            ? B
            : never;

type Plain<T> = { [K in keyof T as K extends string ? ([PluralBase<K>] extends [never] ? K : never) : never]: T[K] extends string ? string : Translation<T[K]> };
type PluralRequired<T> = { [K in keyof T as K extends string ? `${PluralBase<K>}_other` : never]: string };
type PluralOptional<T> = {
  [K in keyof T as K extends string ? `${PluralBase<K>}_${Exclude<PluralCategory, 'other'>}` : never]?: string;
};

export type Translation<T> = Plain<T> & PluralRequired<T> & PluralOptional<T>;
