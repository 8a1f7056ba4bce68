// Tables of the list engine: moderation decisions, public-list subscribers, replay protection.
import type { Migration } from '../store/migrations.ts';

export const listMigrations: Migration[] = [];
