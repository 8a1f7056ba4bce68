// The pipeline worker: takes spooled messages fairly across sources, routes them by list address, commits each result once.
import type { Config, ListConfig } from '../config/types.ts';
import type { OpenResult } from '../crypto/index.ts';
import type { Component, DaemonContext } from '../component.ts';
import { enqueueOutgoing, expectOutbound } from '../queues/outbound.ts';
import { withoutFsync } from '../store/statements.ts';
import type { SpoolRow } from '../queues/spool.ts';
import { loadOrCreateServerSecret } from '../queues/verp.ts';
import { counter, gauge } from '../util/metrics.ts';
import { errorSummary } from '../util/errors.ts';
import { isPostmasterAddress, resolveListAddress, serverNoticeList } from './addresses.ts';
import type { ListAddress } from './addresses.ts';
import type { ListServices, MessageContext, OutgoingMail } from './context.ts';
import { firstMailbox, headerValue, messageIdOf, splitMessage } from './headers.ts';
import { pendingDecision } from './moderation.ts';
import { openInThisThread } from './stages/decrypt.ts';
import type { OpenPool } from './open-pool.ts';
import { stages } from './pipeline.ts';
import type { Stage, StageId } from './pipeline.ts';
import { adminAddresses, buildNotice } from './notices.ts';
import { handleBounceAddress } from './roles/bounces.ts';
import type { RoleOutcome } from './roles/outcome.ts';
import { handleOwner } from './roles/owner.ts';
import { handlePostmaster } from './roles/postmaster.ts';
import { handlePost } from './roles/post.ts';
import { handleRequest } from './roles/request.ts';
import { handleSendkey } from './roles/sendkey.ts';

const pipelineMessages = counter('embargo_pipeline_messages_total', 'Spooled messages finished by the pipeline, by final state', ['state']);
const spoolBacklog = gauge('embargo_spool_backlog', 'Spooled messages not yet finished (queued or processing), by source class', ['class']);
const spoolOldestUnprocessedAgeSeconds = gauge('embargo_spool_oldest_unprocessed_age_seconds', 'Age of the oldest spooled message not yet finished, by source class (0 when none waits)', ['class']);

export interface WorkerOptions {
  /** A row claimed more often than this (it crashed the process each time) is shunted instead of tried again. */
  maxAttempts?: number;
  /** How often to look for work that arrived without a wake-up (a CLI approval from another process). */
  pollIntervalMs?: number;
  /** Called after a commit that queued outgoing mail (the delivery component's kick). */
  onOutgoing?: () => void;
  now?: () => Date;
  /** Replaces stages by id (tests simulate a bug in one stage this way). */
  stages?: Partial<Record<StageId, Stage>>;
  /**
   * Makes the pool of threads that open (decrypt, verify) posts, begun as soon as a message is claimed (the daemon
   * gives one, see createOpenPool). Without it, posts are opened in this thread, one message at a time.
   */
  openPool?: () => OpenPool;
}

/** A claimed spool row and the opening of its posts, begun in the pool before the row's turn. */
interface Claimed {
  row: SpoolRow;
  /** List name → openMessage's result for the post to that list. */
  opened: Map<string, Promise<OpenResult>>;
  /** Set once every opening has settled: the row can be handled without waiting. */
  ready: boolean;
  /** The spool's attempt count once this row's handling began (spool.startAttempt). */
  attempt?: number;
  settled: Promise<void>;
}

export interface PipelineWorker extends Component {
  /** Processes everything queued now; resolves when the spool has no queued row left. */
  drain(): Promise<void>;
}

/** At most this many rows are claimed ahead of their handling (their opening begun in the pool threads). */
export const maxClaimedAhead = 8;

/** The order of precedence when one spool row went to several addresses: a hold keeps the row, and so on. */
const statePrecedence: RoleOutcome['state'][] = ['shunted', 'held', 'rejected', 'done', 'discarded'];

export function createPipelineWorker(daemon: DaemonContext, options: WorkerOptions = {}): PipelineWorker {
  const maxAttempts = options.maxAttempts ?? 3;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const now = options.now ?? (() => new Date());
  const logger = daemon.logger.child({ component: 'pipeline' });
  const stageTable: Record<StageId, Stage> = { ...stages, ...options.stages };
  let pool: OpenPool | null = null;
  /** The row being handled now (one at a time: stages and commits never overlap), for openPost. */
  let current: Claimed | null = null;
  const services: ListServices = {
    db: daemon.db,
    logger,
    now,
    listKey: daemon.listKey,
    openPost: (context) => {
      const begun = current?.row.id === context.spoolId ? current.opened.get(context.list.name) : undefined;
      if (!begun) return pool?.ready ? openInPool(context.raw, context.list) : openInThisThread(context);
      // A thread that died (memory, a crash) took its tasks with it: open once more in a fresh thread. An exception
      // inside openMessage is a bug and goes on to shunt the message, as it would in this thread.
      return begun.catch((error: unknown) => (error instanceof Error && error.name === 'OpenThreadStopped' ? openInPool(context.raw, context.list) : Promise.reject(error)));
    },
  };
  let secret: Buffer | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = true;
  /** Set after a busy database: stop this round, the poll timer starts the next. */
  let pause = false;
  /** Claimed rows not handled yet, in claim (fair) order; a row stays here across a busy-database pause. */
  const claimed: Claimed[] = [];
  let timer: NodeJS.Timeout | null = null;
  /** Rows claimed ahead, so the pool threads open them while this thread handles the one before. */
  const windowSize = () => (pool ? Math.min(pool.size * 2, maxClaimedAhead) : 1);

  async function openInPool(raw: Buffer, list: ListConfig): Promise<OpenResult> {
    // The list key is loaded (or first generated) here, so a thread only ever reads it.
    await daemon.listKey(list.name);
    if (!pool) throw new Error('open pool not started');
    return pool.open({ raw, listName: list.name, members: memberKeysOf(list) });
  }

  /** Starts the pool's threads on the lists' keys (loaded here first, so a thread only ever reads them), once. */
  let warming = false;
  function warmPool(openPool: OpenPool): void {
    // Started before: only threads that died since are started again, on the same lists.
    if (warming) return openPool.warm(undefined);
    warming = true;
    const lists = [...daemon.config().lists.values()];
    void Promise.all(lists.map((list) => daemon.listKey(list.name)))
      .catch(() => undefined)
      .then(() => openPool.warm(lists.map((list) => ({ listName: list.name, members: memberKeysOf(list) }))));
  }

  function begin(row: SpoolRow): Claimed {
    const opened = new Map<string, Promise<OpenResult>>();
    // A registered poster's mail is most likely a post that fans out: delivery may open relay connections meanwhile.
    if (row.sourceClass === 'poster') expectOutbound();
    // The threads start once messages queue up (another row is waiting): for one message at a time, opening it here
    // is as fast, and an idle daemon or a first post after a start does not pay for loading them. Until one has
    // loaded, rows are opened in their turn, here, rather than wait for it.
    if (pool && !pool.ready && claimed.length > 0) warmPool(pool);
    // A message whose handling began maxAttempts times already is shunted at its turn: no need to open it.
    if (pool?.ready && row.attempts < maxAttempts) {
      for (const target of uniqueTargets(daemon.config(), row.rcptTo)) {
        if (target.role !== 'post' || opened.has(target.list.name)) continue;
        const opening = openInPool(row.raw, target.list);
        // Settled by whoever uses it; unused openings (a loop detected first) must not be unhandled rejections.
        opening.catch(() => undefined);
        opened.set(target.list.name, opening);
      }
    }
    const entry: Claimed = { row, opened, ready: opened.size === 0, settled: Promise.resolve() };
    entry.settled = Promise.allSettled(opened.values()).then(() => {
      entry.ready = true;
    });
    return entry;
  }

  /**
   * The first claimed row whose opening is done, in claim order, but never ahead of an earlier row of its own source
   * (one sender's messages, e.g. an advisory's revisions, are handled in the order they came); waits if none is.
   */
  async function nextReady(): Promise<Claimed> {
    for (;;) {
      const earlier = new Set<string>();
      const ready = claimed.find((entry) => {
        const source = `${entry.row.remoteAddress ?? ''} ${entry.row.mailFrom.toLowerCase()}`;
        const eligible = entry.ready && !earlier.has(source);
        earlier.add(source);
        return eligible;
      });
      if (ready) {
        claimed.splice(claimed.indexOf(ready), 1);
        return ready;
      }
      // Only openings still running can change the answer (awaiting settled ones would spin without end).
      await Promise.race(claimed.filter((entry) => !entry.ready).map((entry) => entry.settled));
    }
  }

  const wake = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    const loop = async () => {
      // Yield first: otherwise an empty spool finishes this body before `running` is even assigned.
      await Promise.resolve();
      try {
        do {
          again = false;
          while (!stopped && !pause) {
            while (claimed.length < windowSize() && !pause) {
              const row = claim();
              if (!row) break;
              claimed.push(begin(row));
            }
            if (pause || claimed.length === 0) break;
            // Not strictly the oldest claimed first: one slow message (a big decrypt in a thread) does not hold back
            // the others; stages and commits still run one message at a time, in this thread.
            const entry = await nextReady();
            current = entry;
            try {
              await processRow(entry);
            } finally {
              current = null;
            }
            // Let sockets and timers run between messages: a long spool must not starve HTTP or delivery.
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        } while (again && !stopped && !pause);
      } finally {
        pause = false;
        running = null;
      }
    };
    running = loop();
    return running;
  };

  function claim(): SpoolRow | null {
    try {
      return daemon.spool.claimNext();
    } catch (error) {
      if (!isBusy(error)) throw error;
      logger.warn('database busy; claiming again at the next wake-up');
      pause = true;
      return null;
    }
  }

  /**
   * The database was locked longer than busy_timeout (a long CLI write), or the disk is full or read-only: not a bug,
   * and nothing was written. The row stays ours ('processing'); it is handled again, from the start, at the next
   * wake-up (the poll timer), until the database takes the write.
   */
  function retryWhenNotBusy(entry: Claimed, error: unknown): void {
    logger.warn({ spoolId: entry.row.id, code: (error as { code?: string }).code }, 'database busy; message is tried again shortly');
    pause = true;
    claimed.unshift(entry);
  }

  async function processRow(entry: Claimed): Promise<void> {
    const { row } = entry;
    const started = Date.now();
    const config = daemon.config();
    try {
      // Counted once per turn: a retry after a busy database is the same attempt (nothing crashed).
      entry.attempt ??= daemon.spool.startAttempt(row.id);
    } catch (error) {
      if (!isBusy(error)) throw error;
      return retryWhenNotBusy(entry, error);
    }
    if (entry.attempt > maxAttempts) {
      await shunt(row, config, `gave up after ${entry.attempt - 1} attempts that did not finish (the process stopped while handling it)`);
      return;
    }
    try {
      const result = await handleRow(row, config);
      const queued = commit(row, result, config);
      logger.info({ spoolId: row.id, list: result.list, state: result.state, reason: result.reason, ms: Date.now() - started }, 'message processed');
      if (queued) options.onOutgoing?.();
    } catch (error) {
      if (isBusy(error)) return retryWhenNotBusy(entry, error);
      // An exception is a bug, not a policy outcome: keep the bytes, tell the admins, go on with the next message.
      logger.error({ spoolId: row.id, err: errorSummary(error) }, 'message shunted after an exception');
      await shunt(row, config, `exception: ${errorSummary(error).name}`);
    }
  }

  interface RowResult {
    state: RoleOutcome['state'];
    outcome: string;
    reason: string | null;
    list: string | null;
    outgoing: OutgoingMail[];
    effects: Array<() => void>;
  }

  async function handleRow(row: SpoolRow, config: Config): Promise<RowResult> {
    const outgoing: OutgoingMail[] = [];
    const effects: Array<() => void> = [];
    const targets = uniqueTargets(config, row.rcptTo);
    if (targets.length === 0) {
      return { state: 'discarded', outcome: 'discard', reason: 'no list address among the recipients (list removed?)', list: null, outgoing, effects };
    }
    const outer = splitMessage(row.raw);
    const decision = pendingDecision(daemon.db, row.id);
    // name: the list the row belongs to, null for postmaster mail (which belongs to no list).
    const results: Array<{ name: string | null; outcome: RoleOutcome }> = [];
    for (const target of targets) {
      // A moderator's decision concerns the held post only; the other addresses were answered the first time.
      if (decision && (target.role !== 'post' || target.list.name !== decision.list)) continue;
      const context: MessageContext = {
        spoolId: row.id,
        receivedAt: new Date(row.receivedAt),
        config,
        list: target.list,
        raw: row.raw,
        envelopeFrom: row.mailFrom,
        outer,
        from: firstMailbox(headerValue(outer.headers, 'From')),
        messageId: messageIdOf(headerValue(outer.headers, 'Message-ID')),
        approved: false,
        listKey: await daemon.listKey(target.list.name),
        outgoing,
        effects,
        services,
      };
      results.push({ name: target.role === 'postmaster' ? null : target.list.name, outcome: await route(context, target, decision) });
    }
    if (results.length === 0) {
      return { state: 'discarded', outcome: 'discard', reason: 'moderation decision for a list that is gone', list: decision?.list ?? null, outgoing, effects };
    }
    results.sort((a, b) => statePrecedence.indexOf(a.outcome.state) - statePrecedence.indexOf(b.outcome.state));
    const first = results[0];
    return {
      state: first.outcome.state,
      outcome: first.outcome.outcome,
      reason: results.map((result) => `${result.name ?? 'postmaster'}: ${result.outcome.reason ?? result.outcome.outcome}`).join('; '),
      list: first.name,
      outgoing,
      effects,
    };
  }

  async function route(context: MessageContext, target: Target, decision: ReturnType<typeof pendingDecision>): Promise<RoleOutcome> {
    switch (target.role) {
      case 'post':
        return handlePost(context, decision, stageTable);
      case 'request':
        return handleRequest(context);
      case 'owner':
        return handleOwner(context);
      case 'sendkey':
        return handleSendkey(context);
      case 'postmaster':
        return handlePostmaster(context);
      case 'bounces':
        secret ??= loadOrCreateServerSecret(context.config.server.dataPath);
        return handleBounceAddress(context, target.token, secret);
    }
  }

  /** The spool row's new state, its outgoing mail and its other writes: one transaction, so nothing completes twice. */
  function commit(row: SpoolRow, result: RowResult, config: Config): boolean {
    const list = result.list;
    // The queue row's list makes the envelope sender, LIST-bounces+TOKEN@: mail that belongs to no list (postmaster
    // forwards) goes out in the name of the list that signed it, so its bounces come back to an address we accept
    // and handle. Not the null sender: RFC 5321 4.5.5 keeps that for delivery reports; forwards and notices SHOULD
    // carry a valid reverse-path.
    const sender = list ?? serverNoticeList(config)?.name;
    // Not fsynced on its own (see withoutFsync): the spooled message was, before its 250, and a result a power cut
    // undoes is worked out again from it. The next fsynced commit (intake's) makes this one durable as well.
    withoutFsync(daemon.db, () => daemon.db.transaction(() => {
      for (const mail of result.outgoing) {
        if (mail.copies.length === 0) continue;
        // Outgoing mail is always built by a list (its key signs it), so with no list configured there is none.
        if (!sender) throw new Error('outgoing mail but no list to send it in the name of');
        enqueueOutgoing(daemon.db, { spoolId: row.id, list: sender, payload: mail.payload, copies: mail.copies });
      }
      for (const effect of result.effects) effect();
      daemon.spool.markState(row.id, result.state, { outcome: result.outcome, reason: result.reason, list });
    })());
    pipelineMessages.inc({ state: result.state });
    return result.outgoing.some((mail) => mail.copies.length > 0);
  }

  async function shunt(row: SpoolRow, config: Config, reason: string): Promise<void> {
    pipelineMessages.inc({ state: 'shunted' });
    const list = uniqueTargets(config, row.rcptTo)[0]?.list ?? null;
    let notices: OutgoingMail[] = [];
    if (list) {
      try {
        notices = await buildNotice(config, list, await daemon.listKey(list.name), {
          to: adminAddresses(config, list),
          subject: `${list.name}: a message was shunted (${row.id})`,
          text: [
            `The list engine could not process a message to ${list.address}; it is kept unchanged in the spool.`,
            '',
            `Spool id: ${row.id}`,
            `Reason:   ${reason}`,
            '',
            'This is a bug in Embargo, not a problem with the message. The server log has the details under that spool id.',
          ].join('\n'),
          sensitive: false,
          encryptWhenPossible: true,
          autoSubmitted: 'auto-generated',
        }, now());
      } catch (error) {
        logger.error({ spoolId: row.id, err: errorSummary(error) }, 'could not build the shunt notice for the admins');
      }
    }
    try {
      daemon.db.transaction(() => {
        // Notices exist only when a list built them (see above), so list is set whenever this loop runs.
        if (list) for (const mail of notices) enqueueOutgoing(daemon.db, { spoolId: row.id, list: list.name, payload: mail.payload, copies: mail.copies });
        daemon.spool.markState(row.id, 'shunted', { outcome: 'shunt', reason, list: list?.name ?? null });
      })();
    } catch (error) {
      logger.error({ spoolId: row.id, err: errorSummary(error) }, 'could not mark the message shunted');
      return;
    }
    logger.warn({ spoolId: row.id, list: list?.name }, 'message shunted; raw bytes kept for the admins');
    if (notices.length > 0) options.onOutgoing?.();
  }

  return {
    name: 'pipeline',
    async start() {
      stopped = false;
      if (options.openPool) pool = options.openPool();
      else delete services.openPost;
      // What waits for this worker, per source class: a flood shows as a growing 'other' with an old oldest message.
      spoolBacklog.readFrom(() =>
        daemon.db.open ? daemon.spool.backlogByClass().map((entry) => ({ labels: { class: entry.sourceClass }, value: entry.messages })) : [],
      );
      spoolOldestUnprocessedAgeSeconds.readFrom(() => {
        if (!daemon.db.open) return [];
        const time = now().getTime();
        return daemon.spool.backlogByClass().map((entry) => ({
          labels: { class: entry.sourceClass },
          value: entry.oldestReceivedAt === null ? 0 : Math.max(0, Math.round((time - entry.oldestReceivedAt) / 1000)),
        }));
      });
      const safeWake = () => {
        wake().catch((error: unknown) => logger.error({ err: errorSummary(error) }, 'pipeline loop failed; the next wake-up starts it again'));
      };
      daemon.onSpooled(safeWake);
      timer = setInterval(safeWake, pollIntervalMs);
      timer.unref();
      safeWake();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      await running;
      // Claimed ahead but not handled: back to the queue as they were, for the next start.
      for (const entry of claimed.splice(0)) {
        try {
          daemon.spool.unclaim(entry.row.id);
        } catch (error) {
          logger.warn({ spoolId: entry.row.id, err: errorSummary(error) }, 'could not give a claimed message back; the next start requeues it');
        }
      }
      await pool?.close();
      pool = null;
    },
    async drain() {
      do {
        await wake();
      } while (running);
    },
  };
}

function memberKeysOf(list: ListConfig): Array<{ address: string; armored: string }> {
  return list.members.filter((member) => member.armoredKey).map((member) => ({ address: member.address, armored: member.armoredKey! }));
}

/** Where a spooled message goes: a list address, or postmaster, handled in the name of serverNoticeList. */
type Target = ListAddress | { list: ListConfig; role: 'postmaster'; token?: undefined };

function resolveTarget(config: Config, recipient: string): Target | null {
  const address = resolveListAddress(config, recipient);
  if (address) return address;
  if (!isPostmasterAddress(config, recipient)) return null;
  const list = serverNoticeList(config);
  return list ? { list, role: 'postmaster' } : null;
}

/** Each distinct address of the envelope once (NAME@ and NAME-request@ of one list are two; postmaster is one). */
function uniqueTargets(config: Config, recipients: string[]): Target[] {
  const seen = new Set<string>();
  const targets: Target[] = [];
  for (const recipient of recipients) {
    const target = resolveTarget(config, recipient);
    if (!target) continue;
    const key = `${target.list.name}\u0000${target.role}\u0000${target.token ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    targets.push(target);
  }
  return targets;
}

/**
 * The database could not take the write now — locked by another connection, or the disk is full, read-only or
 * failing. Not a bug in the message's handling: nothing was written, and the same row is tried again later.
 */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN)/.test(code);
}

/** Name and stack frames only: an exception's message may quote the input, which must not reach the log. */
