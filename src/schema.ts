// Every module's schema migrations in the order they apply; the daemon and the CLI hand this list to store/ when they open the database.
import { archiveMigrations } from './archive/archive-schema.ts';
import { listMigrations } from './lists/lists-schema.ts';
import { opsMigrations } from './ops/ops-schema.ts';
import { outboundMigrations } from './queues/outbound-schema.ts';
import { spoolMigrations } from './queues/spool-schema.ts';
import { advisoryMigrations } from './advisories/schema.ts';
import type { Migration } from './store/migrations.ts';

// Append only: a migration that has shipped is never edited, a new one is added after it.
export const migrations: readonly Migration[] = [
  ...spoolMigrations,
  ...outboundMigrations,
  ...listMigrations,
  ...archiveMigrations,
  ...opsMigrations,
  ...advisoryMigrations,
];
