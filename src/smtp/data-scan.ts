// A fast path for nodemailer's SMTP DATA escaping: chunks that need no change (CRLF lines, no leading dot) pass without a byte loop.
//
// Why: nodemailer's DataStream looks at every byte in JavaScript to stuff dots and repair bare CR/LF. A fan-out sends
// the same armored payload (CRLF lines of base64, never a leading dot) once per recipient, so that loop was the largest
// single cost of delivery (100 copies of 140 KiB: about 14 MB scanned byte by byte per post). Here the line ends are
// found with Buffer#indexOf (memchr); a chunk that needs any change still goes through nodemailer's own code, so the
// bytes on the wire are exactly what nodemailer writes.
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import type { TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/**
 * Whether nodemailer's DataStream would change this chunk: a bare CR, a bare LF, or a dot at the start of a line.
 * `previous` is the last byte of the stream so far (false at its start), as DataStream keeps it.
 */
export function needsEscaping(chunk: Buffer, previous: number | false): boolean {
  if (chunk.length === 0) return false;
  const first = chunk[0];
  if (previous === CR && first !== LF) return true;
  if (first === DOT && (previous === LF || previous === false)) return true;
  for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, at + 1)) {
    if ((at > 0 ? chunk[at - 1] : previous) !== CR) return true;
    if (at + 1 < chunk.length && chunk[at + 1] === DOT) return true;
  }
  // A CR at the very end is judged with the next chunk's first byte (the `previous === CR` test above).
  for (let at = chunk.indexOf(CR); at !== -1 && at + 1 < chunk.length; at = chunk.indexOf(CR, at + 1)) {
    if (chunk[at + 1] !== LF) return true;
  }
  return false;
}

type TransformFunction = (this: DataStream, chunk: Buffer | string, encoding: BufferEncoding, done: TransformCallback) => void;

let installed = false;

/**
 * Replaces DataStream's transform with one that passes clean chunks through unchanged and hands every other chunk
 * to the original. Idempotent. Returns false (and changes nothing) if DataStream does not look as expected.
 */
export function installFastDataScan(): boolean {
  if (installed) return true;
  const prototype = DataStream.prototype as unknown as { _transform: TransformFunction };
  const original = prototype._transform;
  const probe = new DataStream();
  // The fast path keeps DataStream's own counters; an unknown version of it is left alone.
  if (typeof original !== 'function' || probe.lastByte !== false || probe.inByteCount !== 0 || probe.outByteCount !== 0) return false;
  prototype._transform = function fastTransform(this: DataStream, chunk, encoding, done) {
    if (!Buffer.isBuffer(chunk) || chunk.length === 0 || needsEscaping(chunk, this.lastByte)) {
      original.call(this, chunk, encoding, done);
      return;
    }
    this.inByteCount += chunk.length;
    this.outByteCount += chunk.length;
    this.push(chunk);
    this.lastByte = chunk[chunk.length - 1];
    done();
  };
  installed = true;
  return true;
}
