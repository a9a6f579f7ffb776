import type { Locale } from '../locales.js';
import enUS from './en-US/index.js';
import esES from './es-ES/index.js';
import ptBR from './pt-BR/index.js';
import fr from './fr/index.js';
import de from './de/index.js';
import ja from './ja/index.js';
import ko from './ko/index.js';
import zhCN from './zh-CN/index.js';

/** The namespaces, one file each per locale; `common` is the default for keys written without a prefix. */
export const NAMESPACES = ['common', 'imagine', 'admin', 'member', 'commands'] as const;
export type Namespace = (typeof NAMESPACES)[number];

/** The en-US catalog is the source of every key's type. */
export type Catalog = typeof enUS;

/** Every locale's catalog, bundled in the code: nothing is loaded at run time. */
export const resources = {
  'en-US': enUS,
  'es-ES': esES,
  'pt-BR': ptBR,
  fr,
  de,
  ja,
  ko,
  'zh-CN': zhCN,
} satisfies Record<Locale, Record<Namespace, object>>;
