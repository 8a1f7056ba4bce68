// Tables of the archive: messages (encrypted for private lists), threads, full-text search, embargo releases.
import type { Migration } from '../store/migrations.ts';

export const archiveMigrations: Migration[] = [];
