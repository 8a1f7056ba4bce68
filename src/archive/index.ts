// The archive's public surface: what the pipeline, the daemon, the CLI and the web server call.
export { prepareArchiveEntry, insertArchiveEntry, type PreparedArchiveEntry, type PrepareInput, type ArchiveHeaders } from './store.ts';
export {
  findArchived,
  archivedMessages,
  publicMonths,
  publicMessagesInMonth,
  publicThread,
  publicMessage,
  searchPublic,
  type ArchiveSummary,
} from './queries.ts';
export { archivedAtUrl, publicBaseUrl, messagePath, threadPath } from './urls.ts';
export { findEmbargoEnd, parseRfc3339 } from './embargo-date.ts';
export { mboxRecord, parseMbox } from './mbox.ts';
