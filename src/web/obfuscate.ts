// Hides mail addresses from address harvesters on public pages and feeds: `security@vendor.example` → `security at vendor.example`.

// A practical address shape (RFC 5322 dot-atom local part, a dotted domain): catches what harvesters look for
// without touching Message-IDs in URLs, which are percent-encoded. Every part is bounded (RFC 5321 lengths), so a
// hostile megabyte without an '@' costs linear time, not quadratic.
const address = /([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64})@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,10}[A-Za-z]{2,63})\b/g;

/** Text with every address written as `local at domain`; readers can still tell who wrote, crawlers find no address. */
export function obfuscateAddresses(text: string): string {
  return text.replace(address, '$1 at $2');
}

/** Whether the text holds anything that looks like a mail address. */
export function containsAddress(text: string): boolean {
  address.lastIndex = 0;
  const found = address.test(text);
  address.lastIndex = 0;
  return found;
}
