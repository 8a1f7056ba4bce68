// Handing bytes to openpgp.js and taking them back without needless copies: literal messages, streamed when big, and outputs joined once.
import * as openpgp from 'openpgp';

/** A binary literal message of `data` as it is (a view, not a copy). */
export async function literalOf(data: Buffer): Promise<openpgp.Message<Uint8Array>> {
  return openpgp.createMessage({ binary: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), format: 'binary' });
}

/** From this size on, openpgp.js gets its input as a stream (below it, streams only cost time). */
const STREAM_THRESHOLD = 1024 * 1024;
const STREAM_CHUNK = 1024 * 1024;

/**
 * A literal message openpgp.js reads in 1 MiB views when `data` is big. Given one whole array, openpgp.js copies the
 * whole message five or six times on the way (literal packet, packet list, MDC input, ciphertext, packet framing):
 * about 105 MB for a 17 MiB post; streamed, it works chunk by chunk (partial body lengths, as gpg writes from a pipe).
 */
export async function literalMessage(parts: Buffer[]): Promise<openpgp.Message<Uint8Array>> {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  if (total < STREAM_THRESHOLD) return literalOf(parts.length === 1 ? parts[0] : Buffer.concat(parts, total));
  let index = 0;
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      while (index < parts.length && offset >= parts[index].length) {
        index += 1;
        offset = 0;
      }
      if (index >= parts.length) {
        controller.close();
        return;
      }
      const part = parts[index];
      const end = Math.min(offset + STREAM_CHUNK, part.length);
      controller.enqueue(new Uint8Array(part.buffer, part.byteOffset + offset, end - offset));
      offset = end;
    },
  });
  return (await openpgp.createMessage({ binary: stream, format: 'binary' })) as unknown as openpgp.Message<Uint8Array>;
}

/** openpgp.js output as one Buffer: a view of an array, or the chunks of a stream joined once. */
export async function collected(output: Uint8Array | ReadableStream<Uint8Array>): Promise<Buffer> {
  if (output instanceof Uint8Array) return Buffer.from(output.buffer, output.byteOffset, output.byteLength);
  const reader = output.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  return Buffer.concat(chunks, total);
}

