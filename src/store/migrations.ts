// The ordered list of schema migrations; each module owns its tables' SQL in its own file.
import { spoolMigrations } from '../smtp/spool-schema.ts';
import { outboundMigrations } from '../smtp/outbound-schema.ts';
import { listMigrations } from '../lists/lists-schema.ts';
import { archiveMigrations } from '../archive/archive-schema.ts';
import { opsMigrations } from '../ops/ops-schema.ts';
import { advisoryMigrations } from '../advisories/schema.ts';

export interface Migration {
  /** Unique, never renamed: `module-NNN-what`. */
  id: string;
  sql: string;
}

// Append only: a migration that has shipped is never edited, a new one is added after it.
export const migrations: Migration[] = [
  ...spoolMigrations,
  ...outboundMigrations,
  ...listMigrations,
  ...archiveMigrations,
  ...opsMigrations,
  ...advisoryMigrations,
];
