/**
 * "1 image" / "4 images": a count with its noun, for every member-facing text (never "image(s)"). `many` is for
 * nouns whose plural is not the singular plus "s" ("1 person" / "2 people").
 */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
