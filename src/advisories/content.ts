// What a revision keeps (encrypted to the list key) and what a release publishes: the team's signed content, byte-exact.
import { randomBytes } from 'node:crypto';
import type { Config, ListConfig } from '../config/types.ts';
import { decryptFromArchive, encryptForArchive, type ListKey, type OpenedMessage } from '../crypto/index.ts';
import { splitMessage, formatHeaders, quoteDisplayName } from '../lists/headers.ts';
import type { HeaderList } from '../lists/headers.ts';
import { archivedAtUrl, listHeaders, subjectHeader } from '../lists/outgoing-headers.ts';
import { publicTitle } from './identify.ts';

/** A revision as stored: the members' copy (to send it again) and the publishable signed content. */
export interface RevisionContent {
  advisoryId: string;
  title: string;
  /** The parts sealFanout takes, as the pipeline built them for the members. */
  copy: {
    content: Buffer;
    protectedHeaders: HeaderList;
    note: string;
    outerHeaders: HeaderList;
    messageId: string;
  };
  /** A MIME entity anyone with the team's public key can verify: clearsigned text, or multipart/signed. */
  publishable: Buffer;
}

interface StoredForm {
  advisoryId: string;
  title: string;
  copy: { content: string; protectedHeaders: HeaderList; note: string; outerHeaders: HeaderList; messageId: string };
  publishable: string;
}

export async function sealRevision(listKey: ListKey, content: RevisionContent): Promise<Buffer> {
  const stored: StoredForm = {
    advisoryId: content.advisoryId,
    title: content.title,
    copy: { ...content.copy, content: content.copy.content.toString('base64') },
    publishable: content.publishable.toString('base64'),
  };
  return encryptForArchive(listKey, Buffer.from(JSON.stringify(stored)));
}

export async function openRevision(listKey: ListKey, sealed: Buffer): Promise<RevisionContent> {
  const stored = JSON.parse((await decryptFromArchive(listKey, sealed)).toString('utf8')) as StoredForm;
  return {
    advisoryId: stored.advisoryId,
    title: stored.title,
    copy: { ...stored.copy, content: Buffer.from(stored.copy.content, 'base64') },
    publishable: Buffer.from(stored.publishable, 'base64'),
  };
}

const BEGIN_SIGNED = Buffer.from('-----BEGIN PGP SIGNED MESSAGE-----');

/**
 * The poster's content in a form the public can verify with the team's key: a clearsigned text as it is; a
 * PGP/MIME-signed entity (one-pass signed inside the encryption, or signed then encrypted) as RFC 3156
 * multipart/signed with the very signature the list verified, around the entity's exact bytes.
 */
export function publishableContent(opened: OpenedMessage): Buffer {
  if (opened.entity.includes(BEGIN_SIGNED)) {
    const entity = splitMessage(opened.entity);
    const contentHeaders = entity.headers.filter(([name]) => name.toLowerCase().startsWith('content-'));
    const head = contentHeaders.length > 0 ? formatHeaders(contentHeaders) : 'Content-Type: text/plain\r\n';
    return Buffer.concat([Buffer.from(head + '\r\n'), entity.body]);
  }
  const { verification } = opened;
  if (!verification.valid || !verification.detachedSignature) return opened.entity;
  const boundary = `embargo-signed-${randomBytes(12).toString('hex')}`;
  const micalg = `pgp-${verification.hashAlgorithm ?? 'sha256'}`;
  return Buffer.concat([
    Buffer.from(
      `Content-Type: multipart/signed; micalg=${micalg}; protocol="application/pgp-signature"; boundary="${boundary}"\r\n\r\n` +
        `This is an OpenPGP/MIME signed message (RFC 3156).\r\n--${boundary}\r\n`,
    ),
    // The CRLF before a boundary belongs to the boundary: the part is exactly the signed bytes.
    opened.entity,
    Buffer.from(
      `\r\n--${boundary}\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\nContent-Description: OpenPGP digital signature\r\n\r\n` +
        `${verification.detachedSignature.replace(/\r?\n/g, '\r\n').replace(/\r\n$/, '')}\r\n--${boundary}--\r\n`,
    ),
  ]);
}

/** A Message-ID of the server's own, named after the advisory and revision; the random part makes it unguessable. */
export function publicationMessageId(config: Config, advisoryId: string, revision: number): string {
  return `${advisoryId.toLowerCase().replace(/[^a-z0-9.-]/g, '-')}.r${revision}.${randomBytes(8).toString('hex')}@${config.server.domain}`;
}

/**
 * The published message: the public list's own headers (none of the announce list's, no verification note), the
 * signed Subject without its embargo marker, and the signed content byte-exact as its body.
 */
export function publishedMessage(
  config: Config,
  publicList: ListConfig,
  content: RevisionContent,
  publication: { messageId: string; releasedAt: Date },
): Buffer {
  const headers: HeaderList = [
    ['From', `${quoteDisplayName(`${publicList.name} list`)} <${publicList.address}>`],
    ['To', publicList.address],
    subjectHeader(publicTitle(content.title)),
    ['Date', publication.releasedAt.toUTCString().replace('GMT', '+0000')],
    ['Message-ID', `<${publication.messageId}>`],
    ['MIME-Version', '1.0'],
    ...listHeaders(config, publicList),
    ['Precedence', 'list'],
  ];
  const url = archivedAtUrl(config, publicList, publication.messageId);
  if (url) headers.push(['Archived-At', `<${url}>`]);
  return Buffer.concat([Buffer.from(formatHeaders(headers)), content.publishable]);
}
