/**
 * One email address, exactly, as `deno task erase` and
 * `mailgun_webhook.erase_recipient` accept it (migrations/0011's
 * is_one_address, the same rule; tests/erasure_test.ts holds both to the same
 * cases): a dot-atom local part of at most 64 characters (RFC 5322's, but
 * `%`), `@`, a domain of two or more labels whose last starts with a letter,
 * 254 characters in all, ASCII only. No whitespace, no second address, no
 * wildcard, no bare domain.
 */
const ONE_ADDRESS =
  /^[A-Za-z0-9!#$&'*+\/=?^_`{|}~-]+(\.[A-Za-z0-9!#$&'*+\/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$/;

/** Whether `text` is exactly one email address (see {@link ONE_ADDRESS}). */
export function isOneAddress(text: string): boolean {
  return text.length <= 254 && text.split("@")[0].length <= 64 && ONE_ADDRESS.test(text);
}
