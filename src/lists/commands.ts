// Parses the commands of a mail to NAME-request@: the Subject and the body's first lines, quotes and signatures skipped.

export type CommandName =
  | 'help'
  | 'sendkey'
  | 'subscribe'
  | 'unsubscribe'
  | 'confirm'
  | 'list-keys'
  | 'get'
  | 'index'
  | 'approve'
  | 'reject'
  | 'advisory';

export interface Command {
  name: CommandName;
  args: string[];
  /** The line as written, for the reply's transcript. */
  line: string;
  /** Where it was found: a command that decides anything must come from the signed body, not an outer Subject. */
  source: 'subject' | 'body';
}

export interface ParsedCommands {
  commands: Command[];
  unknown: string[];
}

const names = new Set<string>(['help', 'sendkey', 'subscribe', 'unsubscribe', 'confirm', 'list-keys', 'get', 'index', 'approve', 'reject', 'advisory']);
const aliases: Record<string, CommandName> = { join: 'subscribe', leave: 'unsubscribe', listkeys: 'list-keys', 'list-key': 'list-keys' };

/** At most this many commands per mail; more is abuse or a quoted conversation. */
export const maxCommands = 10;
/** Parsing stops after this many lines that are not commands (free text after the commands). */
const maxUnknown = 5;

function parseLine(line: string, source: Command['source']): Command | null | 'stop' {
  const trimmed = line.trim().replace(/^(re|aw|fwd?|sv)\s*:\s*/gi, '').trim();
  if (trimmed === '') return null;
  const words = trimmed.split(/\s+/);
  const first = words[0].toLowerCase();
  if (first === 'end' || first === 'stop' || first === 'thanks') return 'stop';
  const name = aliases[first] ?? (names.has(first) ? (first as CommandName) : null);
  if (!name) return null;
  return { name, args: words.slice(1), line: trimmed, source };
}

/** Commands from the Subject first, then the body; `end`, a signature separator or an OpenPGP block ends the body. */
export function parseCommands(subject: string | undefined, body: string): ParsedCommands {
  const commands: Command[] = [];
  const unknown: string[] = [];
  if (subject) {
    const parsed = parseLine(subject, 'subject');
    if (parsed && parsed !== 'stop') commands.push(parsed);
  }
  for (const raw of body.split(/\r?\n/)) {
    if (commands.length >= maxCommands || unknown.length >= maxUnknown) break;
    const line = raw.trim();
    if (line === '-- ' || line === '--' || line.startsWith('-----BEGIN PGP')) break;
    if (line === '' || line.startsWith('>')) continue;
    const parsed = parseLine(line, 'body');
    if (parsed === 'stop') break;
    if (!parsed) {
      unknown.push(line.slice(0, 80));
      continue;
    }
    // The Subject often repeats the body's first command ("confirm TOKEN" in both): do it once.
    if (commands.some((command) => command.line.toLowerCase() === parsed.line.toLowerCase())) continue;
    commands.push(parsed);
  }
  return { commands, unknown };
}
