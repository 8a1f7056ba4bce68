// The fast DATA scan writes exactly the bytes nodemailer's own DataStream writes, for clean and for awkward input.
import { describe, expect, it } from 'vitest';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';
import type { TransformCallback } from 'node:stream';
import { installFastDataScan, needsEscaping } from '../../src/smtp/data-scan.ts';

type TransformFunction = (this: DataStream, chunk: Buffer, encoding: BufferEncoding, done: TransformCallback) => void;
const prototype = DataStream.prototype as unknown as { _transform: TransformFunction };
// Taken before the fast path is installed: nodemailer's own transform is the reference.
const nodemailerTransform = prototype._transform;

class ReferenceStream extends DataStream {
  override _transform(chunk: Buffer, encoding: BufferEncoding, done: TransformCallback): void {
    nodemailerTransform.call(this, chunk, encoding, done);
  }
}

async function escape(stream: DataStream, chunks: Buffer[]): Promise<{ bytes: Buffer; inByteCount: number; outByteCount: number }> {
  const output: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => output.push(chunk));
  const ended = new Promise<void>((resolve) => stream.on('end', resolve));
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await ended;
  return { bytes: Buffer.concat(output), inByteCount: stream.inByteCount, outByteCount: stream.outByteCount };
}

/** Deterministic pseudo-random numbers (xorshift), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x100000000;
  };
}

function splitAt(text: Buffer, next: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < text.length) {
    const size = 1 + Math.floor(next() * 40);
    chunks.push(text.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

describe('fast DATA scan', () => {
  it('is installed over nodemailer’s transform, once', () => {
    expect(installFastDataScan()).toBe(true);
    expect(prototype._transform).not.toBe(nodemailerTransform);
    const installed = prototype._transform;
    expect(installFastDataScan()).toBe(true);
    expect(prototype._transform).toBe(installed);
  });

  it('tells clean chunks from chunks nodemailer changes', () => {
    const clean = Buffer.from('Subject: x\r\n\r\nbody line.\r\nnot first. ..\r\n');
    expect(needsEscaping(clean, false)).toBe(false);
    expect(needsEscaping(Buffer.from('a\nb'), false)).toBe(true); // bare LF
    expect(needsEscaping(Buffer.from('a\rb'), false)).toBe(true); // bare CR
    expect(needsEscaping(Buffer.from('a\r\n.b'), false)).toBe(true); // dot at a line start
    expect(needsEscaping(Buffer.from('.a'), false)).toBe(true); // dot at the very start
    expect(needsEscaping(Buffer.from('.a'), 0x0a)).toBe(true); // dot after the previous chunk's LF
    expect(needsEscaping(Buffer.from('\n.a'), 0x0d)).toBe(true); // LF ending a CRLF across chunks, then a dot
    expect(needsEscaping(Buffer.from('\nab'), 0x0d)).toBe(false);
    expect(needsEscaping(Buffer.from('\nab'), 0x61)).toBe(true); // bare LF at the start
    expect(needsEscaping(Buffer.from('ab'), 0x0d)).toBe(true); // CR at the end of the previous chunk, no LF
    expect(needsEscaping(Buffer.from('ab\r'), false)).toBe(false); // judged with the next chunk
  });

  it('writes the same bytes and counts as nodemailer for 2,000 random messages in random chunks', async () => {
    installFastDataScan();
    const next = random(20251126);
    const alphabet = ['a', 'b', '.', '\r', '\n', '\r\n', '\r\n.', '\r\n..', 'line of text', '\r\n\r\n'];
    for (let round = 0; round < 2000; round++) {
      const pieces: string[] = [];
      const length = Math.floor(next() * 60);
      // Mostly clean CRLF text (the fast path), sometimes the awkward pieces (the fallback).
      const awkward = next() < 0.5;
      for (let index = 0; index < length; index++) {
        pieces.push(awkward ? alphabet[Math.floor(next() * alphabet.length)] : next() < 0.2 ? '\r\n' : 'abc=+/'[Math.floor(next() * 6)]);
      }
      const text = Buffer.from(pieces.join(''), 'latin1');
      const chunks = splitAt(text, next);
      const expected = await escape(new ReferenceStream(), chunks);
      const actual = await escape(new DataStream(), chunks);
      expect(actual.bytes.toString('latin1'), JSON.stringify(text.toString('latin1'))).toBe(expected.bytes.toString('latin1'));
      expect(actual.inByteCount).toBe(expected.inByteCount);
      expect(actual.outByteCount).toBe(expected.outByteCount);
    }
  });
});
