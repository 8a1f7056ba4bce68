// OpenPGP packet framing and ASCII armor done by hand where the shared fan-out payload needs it: one base64 pass, many copies.

/** Input octets per encoding block: a multiple of 48, so every block becomes whole 64-character lines. */
const BLOCK_OCTETS = 48 * 1024;

/**
 * Base64 in 64-character lines, each ending CRLF (the last may be shorter), over a sequence of pieces without
 * joining them first: for a 25 MiB post that saves two full-size copies.
 */
export function base64LinesOf(pieces: Uint8Array[]): Buffer {
  const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
  const characters = Math.ceil(total / 3) * 4;
  const out = Buffer.allocUnsafe(characters + Math.ceil(characters / 64) * 2);
  const staging = Buffer.allocUnsafe(Math.min(BLOCK_OCTETS, Math.max(total, 1)));
  let staged = 0;
  let written = 0;
  const flush = (): void => {
    const encoded = Buffer.from(staging.toString('base64', 0, staged), 'latin1');
    for (let start = 0; start < encoded.length; start += 64) {
      written += encoded.copy(out, written, start, Math.min(start + 64, encoded.length));
      out[written++] = 0x0d;
      out[written++] = 0x0a;
    }
    staged = 0;
  };
  for (const piece of pieces) {
    let offset = 0;
    while (offset < piece.length) {
      const take = Math.min(staging.length - staged, piece.length - offset);
      staging.set(piece.subarray(offset, offset + take), staged);
      staged += take;
      offset += take;
      if (staged === staging.length) flush();
    }
  }
  if (staged > 0) flush();
  return out.subarray(0, written);
}

export function base64Lines(data: Uint8Array): Buffer {
  return base64LinesOf([data]);
}

export function armorMessage(binary: Uint8Array): Buffer {
  return Buffer.concat([
    Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\n'),
    base64Lines(binary),
    Buffer.from(`${checksumLine(crc24(binary))}-----END PGP MESSAGE-----\r\n`),
  ]);
}

/** New-format definite body length (RFC 4880 4.2.2.1-3). */
export function definiteLength(length: number): Buffer {
  if (length < 192) return Buffer.from([length]);
  if (length < 8384) {
    const value = length - 192;
    return Buffer.from([(value >> 8) + 192, value & 0xff]);
  }
  const out = Buffer.alloc(5);
  out[0] = 0xff;
  out.writeUInt32BE(length, 1);
  return out;
}

/** Partial body length header for a chunk of 2^power octets (RFC 4880 4.2.2.4). */
export function partialLength(power: number): number {
  return 0xe0 | power;
}

/**
 * Reads one packet from a binary packet list and returns its tag and its body with any partial-length
 * framing removed, so the body can be re-framed. Partial chunks are joined into a new Buffer, or with
 * `compactInPlace` moved together inside `data` itself (which then no longer holds the packet as written).
 */
export function readPacket(data: Uint8Array, offset = 0, options: { compactInPlace?: boolean } = {}): { tag: number; body: Buffer; end: number } {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const first = bytes[offset];
  if ((first & 0x80) === 0) throw new Error('not an OpenPGP packet');
  let cursor = offset + 1;
  if ((first & 0x40) === 0) {
    // Old format: tag in bits 5-2, length type in bits 1-0.
    const tag = (first >> 2) & 0x0f;
    const lengthType = first & 0x03;
    let length: number;
    if (lengthType === 0) length = bytes[cursor++];
    else if (lengthType === 1) {
      length = bytes.readUInt16BE(cursor);
      cursor += 2;
    } else if (lengthType === 2) {
      length = bytes.readUInt32BE(cursor);
      cursor += 4;
    } else length = bytes.length - cursor;
    return { tag, body: bytes.subarray(cursor, cursor + length), end: cursor + length };
  }
  const tag = first & 0x3f;
  const chunks: Buffer[] = [];
  for (;;) {
    const lengthByte = bytes[cursor++];
    if (lengthByte < 192) {
      chunks.push(bytes.subarray(cursor, cursor + lengthByte));
      cursor += lengthByte;
      break;
    }
    if (lengthByte < 224) {
      const length = ((lengthByte - 192) << 8) + bytes[cursor] + 192;
      cursor += 1;
      chunks.push(bytes.subarray(cursor, cursor + length));
      cursor += length;
      break;
    }
    if (lengthByte === 255) {
      const length = bytes.readUInt32BE(cursor);
      cursor += 4;
      chunks.push(bytes.subarray(cursor, cursor + length));
      cursor += length;
      break;
    }
    const length = 1 << (lengthByte & 0x1f);
    chunks.push(bytes.subarray(cursor, cursor + length));
    cursor += length;
  }
  if (chunks.length === 1) return { tag, body: chunks[0], end: cursor };
  if (!options.compactInPlace) return { tag, body: Buffer.concat(chunks), end: cursor };
  // Every chunk lies after the previous one, so moving each down to the end of the last never overwrites unread bytes.
  const start = chunks[0].byteOffset - bytes.byteOffset;
  let written = start;
  for (const chunk of chunks) {
    const from = chunk.byteOffset - bytes.byteOffset;
    if (from !== written) bytes.copy(bytes, written, from, from + chunk.length);
    written += chunk.length;
  }
  return { tag, body: bytes.subarray(start, written), end: cursor };
}

/** Tag 18, SEIPD, as a new-format packet header octet. */
export const SEIPD_TAG_OCTET = 0xc0 | 18;

/** Octets of the SEIPD body that every copy frames itself (the first partial chunk must be at least 512 octets). */
export const COPY_FRAMED_BODY = 516;

/**
 * Partial-length framing of body[0:516] with 2, 3 or 4 length octets: lets each copy make its own prefix
 * (PKESK + framing) a multiple of 3 octets, so its base64 ends exactly where the shared base64 begins,
 * whatever the size of its PKESK.
 */
export function copyFraming(body: Uint8Array, lengthOctets: 2 | 3 | 4): Buffer {
  const source = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const first = [Buffer.from([partialLength(9)]), source.subarray(0, 512)];
  switch (lengthOctets) {
    case 2:
      return Buffer.concat([...first, Buffer.from([partialLength(2)]), source.subarray(512, 516)]);
    case 3:
      return Buffer.concat([...first, Buffer.from([partialLength(1)]), source.subarray(512, 514), Buffer.from([partialLength(1)]), source.subarray(514, 516)]);
    case 4:
      return Buffer.concat([
        ...first,
        Buffer.from([partialLength(1)]),
        source.subarray(512, 514),
        Buffer.from([partialLength(0)]),
        source.subarray(514, 515),
        Buffer.from([partialLength(0)]),
        source.subarray(515, 516),
      ]);
  }
}

/** Frames the rest of the body (after COPY_FRAMED_BODY) as 1 MiB partial chunks and a definite final chunk; views, not copies. */
export function sharedFramingPieces(rest: Uint8Array): Buffer[] {
  const source = Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength);
  const chunkPower = 20;
  const chunk = 1 << chunkPower;
  const pieces: Buffer[] = [];
  let offset = 0;
  while (source.length - offset > chunk) {
    pieces.push(Buffer.from([partialLength(chunkPower)]), source.subarray(offset, offset + chunk));
    offset += chunk;
  }
  pieces.push(definiteLength(source.length - offset), source.subarray(offset));
  return pieces;
}

export function sharedFraming(rest: Uint8Array): Buffer {
  return Buffer.concat(sharedFramingPieces(rest));
}


// CRC-24 of the armor checksum (RFC 4880 6.1). GnuPG 2.2 needs it: without a checksum line it does not find the
// end of the base64 when the data length is a multiple of 3 (no '=' padding) and reports "invalid radix64 character".
const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x1864cfb;
const CRC24_TABLE = (() => {
  const table = new Int32Array(256);
  for (let byte = 0; byte < 256; byte += 1) {
    let crc = byte << 16;
    for (let bit = 0; bit < 8; bit += 1) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= CRC24_POLY;
    }
    table[byte] = crc & 0xffffff;
  }
  return table;
})();

export function crc24(data: Uint8Array, start = CRC24_INIT): number {
  let crc = start;
  for (let index = 0; index < data.length; index += 1) {
    crc = ((crc << 8) ^ CRC24_TABLE[((crc >> 16) ^ data[index]) & 0xff]) & 0xffffff;
  }
  return crc;
}

/** A linear map on 24-bit CRC states, as the images of the 24 unit vectors. */
type Crc24Operator = Int32Array;

function applyOperator(operator: Crc24Operator, state: number): number {
  let result = 0;
  for (let bit = 0; bit < 24; bit += 1) if (state & (1 << bit)) result ^= operator[bit];
  return result;
}

function composeOperators(outer: Crc24Operator, inner: Crc24Operator): Crc24Operator {
  const result = new Int32Array(24);
  for (let bit = 0; bit < 24; bit += 1) result[bit] = applyOperator(outer, inner[bit]);
  return result;
}

/** The effect on a CRC state of feeding `length` zero octets, built by squaring (log2(length) steps). */
export function crc24ZeroOperator(length: number): Crc24Operator {
  let power: Crc24Operator = new Int32Array(24);
  for (let bit = 0; bit < 24; bit += 1) power[bit] = crc24(new Uint8Array(1), 1 << bit);
  let result: Crc24Operator = new Int32Array(24);
  for (let bit = 0; bit < 24; bit += 1) result[bit] = 1 << bit;
  for (let remaining = length; remaining > 0; remaining = Math.floor(remaining / 2)) {
    if (remaining % 2 === 1) result = composeOperators(power, result);
    power = composeOperators(power, power);
  }
  return result;
}

/**
 * CRC-24 of prefix || shared without reading the shared part again: CRC is affine in its input, so
 * crc(prefix || shared) = Z_len(shared)(crc(prefix)) xor crc_from_zero(shared).
 */
export function combineCrc24(prefixCrc: number, sharedFromZero: number, sharedZeroOperator: Crc24Operator): number {
  return applyOperator(sharedZeroOperator, prefixCrc) ^ sharedFromZero;
}

export function checksumLine(crc: number): string {
  const bytes = Buffer.from([(crc >> 16) & 0xff, (crc >> 8) & 0xff, crc & 0xff]);
  return `=${bytes.toString('base64')}\r\n`;
}
