/**
 * The order of run ids in `listRuns` ties: by Unicode code point, which is also UTF-8 byte order and PostgreSQL's
 * `COLLATE "C"`. (JavaScript's `<` compares UTF-16 units, which differs for characters above U+FFFF.)
 */
export function compareRunIds(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
