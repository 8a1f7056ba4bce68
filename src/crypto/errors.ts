// What an openpgp.js failure means for Embargo: by error type where there is one, else by openpgp.js's exact message, in this one table.
import { MAX_COMPRESSION_RATIO } from './policy.ts';

/** Thrown inside openpgp.js's decompression (decompression.ts) when a packet inflates past the ratio limit. */
export class CompressionRatioError extends Error {
  constructor(readonly ratio: number = MAX_COMPRESSION_RATIO) {
    super(`Maximum decompressed message size exceeded: compression ratio above ${ratio}:1`);
    this.name = 'CompressionRatioError';
  }
}

export type OpenpgpFailureKind = 'decompressed-size' | 'compression-ratio' | 'no-session-key' | 'integrity';

/**
 * openpgp.js 6 throws plain Errors for these (the only error type it exports is GrammarError, for malformed packet
 * sequences), so they are recognised by their exact text. Each is produced from real input in
 * test/crypto/errors.test.ts: a change of wording in openpgp.js fails there, not silently in production.
 * Left out: 'Session key decryption failed.' (only thrown when no key was tried at all, which our callers never
 * do) and 'integrity check failed' (the AES key unwrap that node never uses: WebCrypto's AES-KW is there).
 */
const OPENPGP_MESSAGES: ReadonlyMap<string, OpenpgpFailureKind> = new Map([
  // Inflating zlib/zip past config.maxDecompressedMessageSize.
  ['Maximum decompressed message size exceeded', 'decompressed-size'],
  // The same limit in openpgp.js's bzip2 decoder.
  ['Maximum decompressed size exceeded', 'decompressed-size'],
  // No decryption key matches a PKESK's key id.
  ['No decryption key packets found', 'no-session-key'],
  // The MDC of a SEIPDv1 packet does not match: the ciphertext was changed.
  ['Modification detected.', 'integrity'],
  // The ECDH key wrap does not unwrap with our key: a PKESK changed, or made for another key behind a hidden key id.
  ['Key Data Integrity failed', 'integrity'],
]);

/** The error and the causes openpgp.js chained to it (util.wrapError keeps the original as `cause`); bounded, as causes can form a cycle. */
function chainOf(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let current = error; current !== undefined && current !== null && chain.length < 10; current = (current as { cause?: unknown }).cause) {
    chain.push(current);
  }
  return chain;
}

/** What a failure thrown by openpgp.js (or by our code inside it) means; undefined when it is none of the known ones. */
export function openpgpFailureKind(error: unknown): OpenpgpFailureKind | undefined {
  const chain = chainOf(error);
  if (chain.some((link) => link instanceof CompressionRatioError)) return 'compression-ratio';
  for (const link of chain) {
    const kind = link instanceof Error ? OPENPGP_MESSAGES.get(link.message) : undefined;
    if (kind) return kind;
  }
  return undefined;
}

/** The ratio that refused a compressed packet, when the ratio check (not the size limit) did. */
export function refusedRatio(error: unknown): number | undefined {
  return chainOf(error).find((link): link is CompressionRatioError => link instanceof CompressionRatioError)?.ratio;
}
