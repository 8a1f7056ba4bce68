// The values the pipeline passes around: one message's context, the stage outcomes, and the services stages may use.
import type { Config, ListConfig, Member } from '../config/types.ts';
import type { ListKey, OpenResult, OpenedMessage } from '../crypto/index.ts';
import type { Db } from '../store/database.ts';
import type { Logger } from '../util/log.ts';
import type { HeaderList, Mailbox, SplitMessage } from './headers.ts';

/** Why a post was refused; the code picks the bounce text and the metric label, the detail is for admins only. */
export type RejectCode =
  | 'not-encrypted'
  | 'undecryptable'
  | 'old-list-key'
  | 'uncovered-attachment'
  | 'bad-input'
  | 'unsigned'
  | 'bad-signature'
  | 'not-authorized'
  | 'replay'
  | 'stale-signature'
  | 'not-for-this-list'
  | 'too-large'
  | 'rate-limited'
  | 'no-sender'
  | 'moderator-rejected';

export type StageResult =
  | { kind: 'continue' }
  | { kind: 'accept' }
  | { kind: 'hold'; reason: string }
  | { kind: 'reject'; code: RejectCode; detail: string; toSender?: string }
  | { kind: 'discard'; reason: string };

export const proceed: StageResult = { kind: 'continue' };
export const accept = (): StageResult => ({ kind: 'accept' });
export const hold = (reason: string): StageResult => ({ kind: 'hold', reason });
/** `toSender`: facts about the post itself that the bounce may add (never anything that depends on membership). */
export const reject = (code: RejectCode, detail: string, toSender?: string): StageResult => ({ kind: 'reject', code, detail, ...(toSender ? { toSender } : {}) });
export const discard = (reason: string): StageResult => ({ kind: 'discard', reason });

/** One batch for DELIVERY's enqueueOutgoing: a shared payload (or null) and per-recipient heads/tails. */
export interface OutgoingMail {
  payload: Buffer | null;
  copies: Array<{ recipient: string; head: Buffer; tail?: Buffer; messageId?: string }>;
}

/** The cleaned-up post every recipient gets, before encryption or the list signature. */
export interface CleanCopy {
  /** The poster's content entity, unchanged. */
  content: Buffer;
  /** Headers that travel inside the ciphertext on encrypted lists (the real Subject), or in clear on public lists. */
  protectedHeaders: HeaderList;
  /** Headers on the outside of every copy: From rewritten to the list, List-*, Precedence, threading. */
  outerHeaders: HeaderList;
  /** The verification note readers see first: who posted, who signed. */
  note: string;
  messageId: string;
}

/** What the stages may reach besides the message: the database, the list key, the clock. */
export interface ListServices {
  db: Db;
  logger: Logger;
  now(): Date;
  listKey(listName: string): Promise<ListKey>;
  /**
   * Opens (decrypts, verifies) the post for its list, possibly in another thread and begun before its turn (the
   * pipeline worker's pool); absent: openMessage in this thread. Same result either way.
   */
  openPost?(context: MessageContext): Promise<OpenResult>;
}

export interface MessageContext {
  spoolId: string;
  receivedAt: Date;
  config: Config;
  list: ListConfig;
  /** The bytes as received (for encrypted lists: still ciphertext). */
  raw: Buffer;
  /** MAIL FROM; '' for the null return path. */
  envelopeFrom: string;
  outer: SplitMessage;
  from: Mailbox | null;
  /** The post's Message-ID without brackets, when it has one. */
  messageId: string | null;
  /** A moderator approved this post already: moderation does not hold it again. */
  approved: boolean;
  listKey: ListKey;
  /** Set by decrypt. */
  opened?: OpenedMessage;
  /** Headers of the poster's entity (inside the encryption), set by decrypt. */
  inner?: SplitMessage;
  /** The member whose registered key made a valid signature, set by verify (and cleared by bind-signature on public lists). */
  signer?: Member;
  /** Set by bind-signature when a signature is valid but not for this use (too old, from the future, for other lists). */
  signatureMisuse?: string;
  /** The member the post is from, set by authorize (null on public lists for non-members). */
  poster?: Member | null;
  clean?: CleanCopy;
  /** Announce lists: the advisory this post is a revision of, set by track-advisory from the signed content. */
  advisory?: { advisoryId: string };
  /** Mail to enqueue with the spool row's final state, in one transaction. */
  outgoing: OutgoingMail[];
  /** Database writes that belong to the same transaction (archive row, replay marks, rate counts). */
  effects: Array<() => void>;
  services: ListServices;
}
