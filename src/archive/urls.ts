// Stable public URLs of the archive (by list name and Message-ID), shared by the web pages and the Archived-At header.
import type { Config } from '../config/types.ts';

/** The archive's base URL without a trailing slash: http.publicUrl when set, else the listener's address. */
export function publicBaseUrl(config: Config): string {
  const configured = config.server.http.publicUrl;
  if (configured) return configured.replace(/\/+$/, '');
  const host = config.server.http.host.includes(':') ? `[${config.server.http.host}]` : config.server.http.host;
  return `http://${host}:${config.server.http.port}`;
}

export function listPath(list: string): string {
  return `/lists/${encodeURIComponent(list)}/`;
}

/** Message-IDs go in one path segment, '/' and '@' percent-encoded, angle brackets dropped. */
export function messagePath(list: string, messageId: string): string {
  return `/lists/${encodeURIComponent(list)}/msg/${encodeURIComponent(messageId)}`;
}

export function threadPath(list: string, messageId: string): string {
  return `/lists/${encodeURIComponent(list)}/thread/${encodeURIComponent(messageId)}`;
}

export function monthPath(list: string, month: string): string {
  return `/lists/${encodeURIComponent(list)}/${month}/`;
}

/** The URL for an Archived-At header (RFC 5064); the caller writes it as `<URL>`. */
export function archivedAtUrl(config: Config, list: string, messageId: string): string {
  return publicBaseUrl(config) + messagePath(list, messageId.replace(/^\s*<|>\s*$/g, ''));
}
