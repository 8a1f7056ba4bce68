// Compression-bomb refusal by ratio: openpgp.js's Compressed Data packets are checked on their first MiB before they are inflated.
import { constants, inflateRawSync, inflateSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { CompressionRatioError, openpgpFailureKind } from './errors.ts';
import { MAX_COMPRESSION_RATIO, RATIO_PROBE_BYTES } from './policy.ts';

/** openpgp.js keeps a packet's unread body in its own ArrayStream (an Array of chunks with a readToEnd method). */
interface ChunkArray {
  readToEnd(join: (chunks: Uint8Array[]) => Uint8Array): Promise<Uint8Array>;
}

interface CompressedPacket {
  algorithm: number;
  compressed: Uint8Array | ChunkArray | ReadableStream<Uint8Array> | null;
}

type Decompress = (this: CompressedPacket, config: openpgp.Config) => Promise<void>;

const installed = Symbol.for('embargo.decompressionLimits');

function isChunkArray(value: unknown): value is ChunkArray {
  return Array.isArray(value) && typeof (value as Partial<ChunkArray>).readToEnd === 'function';
}

function joinChunks(chunks: Uint8Array[]): Uint8Array {
  const joined = Buffer.concat(chunks);
  return new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength);
}

/**
 * Whether the first RATIO_PROBE_BYTES / MAX_COMPRESSION_RATIO compressed bytes alone inflate past RATIO_PROBE_BYTES:
 * one native inflate of at most a MiB, a millisecond, instead of streaming to the size limit (0.4 s for 64 MiB).
 */
function prefixExceedsRatio(compressed: Uint8Array, algorithm: string): boolean {
  const inflate = algorithm === 'zip' ? inflateRawSync : algorithm === 'zlib' ? inflateSync : null;
  if (!inflate) return false;
  const prefixLength = Math.ceil(RATIO_PROBE_BYTES / MAX_COMPRESSION_RATIO);
  if (compressed.length <= prefixLength) return false;
  try {
    // Z_SYNC_FLUSH: a cut-off stream is not an error; the probe inflates what the prefix holds.
    inflate(compressed.subarray(0, prefixLength), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: RATIO_PROBE_BYTES });
    return false;
  } catch (error) {
    // Past maxOutputLength: the prefix alone holds more than a MiB. Any other error is corrupt data, which
    // openpgp.js reports itself when it inflates the packet.
    return (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError;
  }
}

/**
 * Wraps CompressedDataPacket.decompress once per process (worker threads have their own copy of the module): the
 * packet's compressed bytes are in memory by then (Embargo never streams), so the prefix probe and a size cap of
 * MAX_COMPRESSION_RATIO times the compressed length come before openpgp.js's own inflation.
 */
export function installDecompressionLimits(): void {
  const prototype = openpgp.CompressedDataPacket.prototype as unknown as { decompress: Decompress; [installed]?: true };
  if (prototype[installed]) return;
  const original = prototype.decompress;
  prototype.decompress = async function decompressWithinRatio(this: CompressedPacket, config: openpgp.Config) {
    if (isChunkArray(this.compressed)) this.compressed = await this.compressed.readToEnd(joinChunks);
    const compressed = this.compressed;
    if (!(compressed instanceof Uint8Array)) return original.call(this, config);
    const algorithm = openpgp.enums.read(openpgp.enums.compression, this.algorithm) as string;
    if (prefixExceedsRatio(compressed, algorithm)) throw new CompressionRatioError();
    const ratioCap = Math.max(RATIO_PROBE_BYTES, compressed.length * MAX_COMPRESSION_RATIO);
    if (ratioCap >= config.maxDecompressedMessageSize) return original.call(this, config);
    try {
      return await original.call(this, { ...config, maxDecompressedMessageSize: ratioCap });
    } catch (error) {
      // The cap that refused it was the ratio, not the configured size: say so.
      if (openpgpFailureKind(error) === 'decompressed-size') throw new CompressionRatioError();
      throw error;
    }
  };
  prototype[installed] = true;
}
