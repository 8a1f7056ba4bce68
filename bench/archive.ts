// Archive benchmark: archiving rate and full-text search latency over 100,000 synthetic public messages, plus private (encrypted) inserts.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ListConfig } from '../src/config/types.ts';
import { ensureListKey, type ListKey } from '../src/crypto/index.ts';
import { publicMessagesInMonth, publicThread, searchPublic, searchPublicPage } from '../src/archive/queries.ts';
import { messageKey } from '../src/archive/message-ids.ts';
import { insertArchiveEntry, prepareArchiveEntry, type PreparedArchiveEntry } from '../src/archive/store.ts';
import { openDatabase } from '../src/store/database.ts';
import { migrations } from '../src/schema.ts';
import type { BenchRow } from './types.ts';

const messageCount = Number(process.env.EMBARGO_BENCH_ARCHIVE_MESSAGES ?? 100_000);
// mailparser costs more than the insert; parsing all 100,000 would take minutes on a shared 2-core machine, so
// the first messages go through prepareArchiveEntry (measured) and the rest are prepared directly, checked equal.
const parsedCount = Math.min(messageCount, Number(process.env.EMBARGO_BENCH_ARCHIVE_PARSED ?? 5_000));
const batchSize = 500;

/** A small deterministic PRNG, so every run archives the same text. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function listConfig(name: string, archive: 'public' | 'private'): ListConfig {
  return {
    name,
    address: `${name}@bench.example`,
    file: `/nonexistent/${name}.yaml`,
    description: 'bench',
    infoFormat: 'markdown',
    kind: archive === 'public' ? 'public' : 'discussion',
    archive,
    moderated: false,
    sendToPoster: true,
    replyTo: 'none',
    postsPerHourPerSender: 20,
    mailOnRelease: false,
    members: [],
  };
}

function sameEntry(parsed: PreparedArchiveEntry, direct: PreparedArchiveEntry): void {
  const comparable = (entry: PreparedArchiveEntry) => {
    const flat: Record<string, unknown> = { ...entry, stored: entry.stored.length, searchText: { ...entry.searchText, body: entry.searchText?.body.trim() } };
    return JSON.stringify(Object.keys(flat).sort().map((key) => [key, flat[key]]));
  };
  if (comparable(parsed) !== comparable(direct)) throw new Error(`bench: direct preparation differs from prepareArchiveEntry:\n${comparable(parsed)}\n${comparable(direct)}`);
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

interface Corpus {
  words: string[];
  /** Zipf-like pick: common words often, rare words seldom. */
  word(): string;
  rand: () => number;
}

function corpus(): Corpus {
  const rand = random(42);
  const syllables = ['xen', 'vir', 'tu', 'al', 'page', 'grant', 'ta', 'ble', 'hy', 'per', 'call', 'dom', 'mem', 'ory', 'ker', 'nel', 'pat', 'ch', 'ro', 'ot', 'ca', 'che', 'ev', 'ent', 'chan', 'nel', 'io', 'mmu', 'lo', 'ck'];
  const words = Array.from({ length: 20_000 }, (_, index) => {
    let word = '';
    const count = 2 + (index % 3);
    for (let i = 0; i < count; i++) word += syllables[Math.floor(rand() * syllables.length)];
    return `${word}${index}`;
  });
  return { words, rand, word: () => words[Math.floor(words.length * rand() ** 3)]! };
}

interface Synthetic {
  raw: Buffer;
  receivedAt: Date;
  messageId: string;
  reply: string | undefined;
  subject: string;
  senderName: string;
  senderAddress: string;
  body: string;
}

function syntheticMessage(index: number, c: Corpus, parents: string[]): Synthetic {
  const receivedAt = new Date(Date.UTC(2020, 0, 1) + index * 30 * 60 * 1000);
  const messageId = `bench-${index}@bench.example`;
  const reply = parents.length > 0 && c.rand() < 0.6 ? parents[Math.floor(c.rand() * parents.length)] : undefined;
  const subjectWords = Array.from({ length: 5 }, () => c.word()).join(' ');
  const lines: string[] = [];
  const lineCount = 6 + Math.floor(c.rand() * 14);
  for (let i = 0; i < lineCount; i++) lines.push(Array.from({ length: 8 + Math.floor(c.rand() * 6) }, () => c.word()).join(' '));
  const senderName = `Poster ${index % 500}`;
  const senderAddress = `poster${index % 500}@example${index % 37}.org`;
  const subject = `${reply ? 'Re: ' : ''}${subjectWords}`;
  const headers = [
    `From: ${senderName} <${senderAddress}>`,
    'To: bench@bench.example',
    `Subject: ${subject}`,
    `Date: ${receivedAt.toUTCString()}`,
    `Message-ID: <${messageId}>`,
    ...(reply ? [`In-Reply-To: <${reply}>`, `References: <${reply}>`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  parents.push(messageId);
  if (parents.length > 200) parents.shift();
  const body = `${lines.join('\r\n')}\r\n`;
  return { raw: Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}`), receivedAt, messageId, reply, subject, senderName, senderAddress, body: lines.join('\n') + '\n' };
}

/** What prepareArchiveEntry produces for these plain messages, built directly (the bench's parse time is measured separately). */
function preparedDirectly(list: ListConfig, message: Synthetic): PreparedArchiveEntry {
  return {
    list: list.name,
    visibility: 'public',
    messageKey: messageKey(list.name, message.messageId),
    referenceKeys: message.reply ? [messageKey(list.name, message.reply)] : [],
    receivedAt: message.receivedAt,
    spoolId: null,
    size: message.raw.length,
    encrypted: false,
    stored: message.raw,
    headers: { messageId: message.messageId, sentAt: message.receivedAt, senderName: message.senderName, senderAddress: message.senderAddress, subject: message.subject, attachmentCount: 0 },
    searchText: { subject: message.subject, sender: `${message.senderName} ${message.senderAddress}`, body: message.body },
    releaseAt: null,
    releaseTo: null,
  };
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'embargo-bench-archive-'));
  try {
    const db = openDatabase(join(dir, 'embargo.sqlite'), migrations);
    const list = listConfig('bench-public', 'public');
    // Public entries are never encrypted; the key is not used.
    const unusedKey: ListKey = { listName: list.name, fingerprint: '', armoredPublicKey: '' };
    const c = corpus();
    const parents: string[] = [];

    // 1. Archive 100,000 public messages, committed in batches as a bulk import would.
    let parseSeconds = 0;
    let insertSeconds = 0;
    let totalBytes = 0;
    for (let batchStart = 0; batchStart < messageCount; batchStart += batchSize) {
      const prepared: PreparedArchiveEntry[] = [];
      const parseStarted = performance.now();
      for (let index = batchStart; index < Math.min(messageCount, batchStart + batchSize); index++) {
        const message = syntheticMessage(index, c, parents);
        totalBytes += message.raw.length;
        if (index < parsedCount) {
          const entry = await prepareArchiveEntry({ list, listKey: unusedKey, message: message.raw, receivedAt: message.receivedAt, spoolId: null });
          if (index === 0 || index === parsedCount - 1) sameEntry(entry, preparedDirectly(list, message));
          prepared.push(entry);
        } else {
          prepared.push(preparedDirectly(list, message));
        }
      }
      const insertStarted = performance.now();
      if (batchStart < parsedCount) parseSeconds += (insertStarted - parseStarted) / 1000;
      db.transaction(() => {
        for (const entry of prepared) insertArchiveEntry(db, entry);
      })();
      insertSeconds += (performance.now() - insertStarted) / 1000;
    }
    const scenario = `${messageCount.toLocaleString('en')} public msgs (avg ${Math.round(totalBytes / messageCount)} B)`;
    const parseMicros = (parseSeconds * 1e6) / parsedCount;
    const insertRate = messageCount / insertSeconds;
    rows.push({ scenario, metric: 'insert rate (rows+threads+FTS), 500/commit', value: insertRate, unit: 'msg/s', target: '≥ 2000', ok: insertRate >= 2000 });
    rows.push({ scenario: `first ${parsedCount.toLocaleString('en')} msgs`, metric: 'prepareArchiveEntry (mailparser)', value: parseMicros, unit: 'µs/msg' });
    rows.push({ scenario, metric: 'archive rate, parse+insert', value: 1 / (parseMicros / 1e6 + 1 / insertRate), unit: 'msg/s' });

    // 2. One transaction per message with synchronous=FULL, as the pipeline commits each post.
    const single = 200;
    const singleStarted = performance.now();
    let singleInsert = 0;
    for (let index = messageCount; index < messageCount + single; index++) {
      const { raw, receivedAt } = syntheticMessage(index, c, parents);
      const entry = await prepareArchiveEntry({ list, listKey: unusedKey, message: raw, receivedAt, spoolId: null });
      const insertStarted = performance.now();
      insertArchiveEntry(db, entry);
      singleInsert += performance.now() - insertStarted;
    }
    rows.push({ scenario: `${single} public msgs, 1 commit each`, metric: 'archive rate, parse+insert', value: single / ((performance.now() - singleStarted) / 1000), unit: 'msg/s' });
    rows.push({ scenario: `${single} public msgs, 1 commit each`, metric: 'insert+commit', value: singleInsert / single, unit: 'ms/msg' });

    // 3. Search latency: 300 queries of common, mid and rare words and two-word queries, newest 50 matches.
    const queries: string[] = [];
    const q = random(7);
    for (let i = 0; i < 300; i++) {
      const kind = i % 4;
      const pick = (bias: number) => c.words[Math.floor(c.words.length * q() ** bias)]!;
      queries.push(kind === 0 ? pick(6) : kind === 1 ? pick(2) : kind === 2 ? pick(0.5) : `${pick(3)} ${pick(3)}`);
    }
    const latencies: number[] = [];
    let hits = 0;
    for (const query of queries) {
      const searchStarted = performance.now();
      hits += searchPublic(db, list.name, query, 50).length;
      latencies.push(performance.now() - searchStarted);
    }
    latencies.sort((a, b) => a - b);
    const searchScenario = `FTS5 search over ${(messageCount + single).toLocaleString('en')} msgs (${queries.length} queries, avg ${Math.round(hits / queries.length)} hits)`;
    rows.push({ scenario: searchScenario, metric: 'p50', value: percentile(latencies, 0.5), unit: 'ms', target: '≤ 20', ok: percentile(latencies, 0.5) <= 20 });
    rows.push({ scenario: searchScenario, metric: 'p99', value: percentile(latencies, 0.99), unit: 'ms', target: '≤ 100', ok: percentile(latencies, 0.99) <= 100 });

    // 3b. What the search page runs: the count of all matches and one page of 20 with body snippets.
    const pageLatencies: number[] = [];
    for (const query of queries) {
      const searchStarted = performance.now();
      searchPublicPage(db, list.name, query, 20, 0);
      pageLatencies.push(performance.now() - searchStarted);
    }
    pageLatencies.sort((a, b) => a - b);
    const pageScenario = `search page: count + 20 snippets (${queries.length} queries)`;
    rows.push({ scenario: pageScenario, metric: 'p50', value: percentile(pageLatencies, 0.5), unit: 'ms' });
    rows.push({ scenario: pageScenario, metric: 'p99', value: percentile(pageLatencies, 0.99), unit: 'ms' });

    // 4. The pages' other queries: a month index and a thread.
    const pageTimes: number[] = [];
    for (let i = 0; i < 100; i++) {
      const month = `${2020 + Math.floor(i / 12) % 5}-${String((i % 12) + 1).padStart(2, '0')}`;
      const pageStarted = performance.now();
      publicMessagesInMonth(db, list.name, month);
      publicThread(db, list.name, `bench-${Math.floor(q() * messageCount)}@bench.example`);
      pageTimes.push(performance.now() - pageStarted);
    }
    pageTimes.sort((a, b) => a - b);
    rows.push({ scenario: 'month index + thread query', metric: 'p50', value: percentile(pageTimes, 0.5), unit: 'ms' });
    rows.push({ scenario: 'month index + thread query', metric: 'p99', value: percentile(pageTimes, 0.99), unit: 'ms' });
    db.pragma('wal_checkpoint(TRUNCATE)');
    rows.push({ scenario: scenario, metric: 'database size', value: statSync(join(dir, 'embargo.sqlite')).size / (1024 * 1024), unit: 'MiB' });

    // 5. Private lists: each message encrypted to the list key before it is stored.
    const privateList = listConfig('bench-private', 'private');
    const key = await ensureListKey({ dataDir: dir, listName: privateList.name, domain: 'bench.example' });
    const privateCount = 500;
    const privateStarted = performance.now();
    for (let index = 0; index < privateCount; index++) {
      const { raw, receivedAt } = syntheticMessage(messageCount + single + index, c, parents);
      insertArchiveEntry(db, await prepareArchiveEntry({ list: privateList, listKey: key, message: raw, receivedAt, spoolId: null }));
    }
    rows.push({ scenario: `${privateCount} private msgs, encrypted, 1 commit each`, metric: 'archive rate', value: privateCount / ((performance.now() - privateStarted) / 1000), unit: 'msg/s' });
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
