// Which header fields of a post its signature vouches for: those of the signed entity itself (protected headers), nothing outside it.
import addressparser from 'nodemailer/lib/addressparser';
import type { MessageContext } from './context.ts';
import { decodeWords, headerValue } from './headers.ts';
import type { HeaderList } from './headers.ts';

/** The signed entity's header fields when a valid signature covers all of it; null when nothing is signed. */
export function signedHeaders(context: MessageContext): HeaderList | null {
  const opened = context.opened;
  if (!opened?.verification.valid || opened.signatureCovers !== 'entity' || !context.inner) return null;
  // Inline PGP signs text only; its entity's header is ours (Content-Type), never the poster's.
  if (opened.format === 'inline') return null;
  return context.inner.headers;
}

/** A field's value from inside the signature, or undefined. */
export function signedHeader(context: MessageContext, name: string): string | undefined {
  const headers = signedHeaders(context);
  return headers ? headerValue(headers, name) : undefined;
}

/** Every address in the signed To and Cc fields (lower case); null when the signature covers neither. */
export function signedRecipients(context: MessageContext): string[] | null {
  const headers = signedHeaders(context);
  if (!headers) return null;
  const values = headers.filter(([name]) => /^(to|cc)$/i.test(name)).map(([, value]) => value);
  if (values.length === 0) return null;
  return values.flatMap((value) =>
    addressparser(decodeWords(value), { flatten: true })
      .map((entry) => entry.address?.toLowerCase())
      .filter((address): address is string => Boolean(address)),
  );
}
