// The resolved, validated configuration that the rest of the daemon reads (paths absolute, keys loaded).
import type { ListSettings, MemberSettings, ServerSettings } from './schema.ts';

export interface Member extends MemberSettings {
  /** Lower-cased address, for lookups. */
  address: string;
  /** Armored public key text, when the member has one configured (from `key:` or `fingerprint:`). */
  armoredKey?: string;
  /** Where the key came from, for messages to admins. */
  keySource?: string;
  /** The list this entry was inherited from (`membersFrom`); absent for members written in the list's own file. */
  inheritedFrom?: string;
}

export interface ListConfig extends Omit<ListSettings, 'members' | 'membersFrom' | 'membersFromRoles'> {
  /** Local part: the file name without .yaml. */
  name: string;
  /** NAME@domain */
  address: string;
  /** Absolute path of the YAML file. */
  file: string;
  members: Member[];
}

export interface ServerConfig extends ServerSettings {
  /** Absolute path of the config directory. */
  configDir: string;
  /** Absolute path of server.yaml. */
  file: string;
  /** dataDir resolved to an absolute path. */
  dataPath: string;
}

export interface Config {
  server: ServerConfig;
  lists: Map<string, ListConfig>;
}

export interface ConfigError {
  file: string;
  line: number;
  column: number;
  reason: string;
}
