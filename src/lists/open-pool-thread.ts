// Body of one open-pool thread: loads list keys and member keys once, then runs openMessage for each task it is sent.
import { parentPort, workerData } from 'node:worker_threads';
import { openMessage, parseMemberKey, readListKey } from '../crypto/index.ts';
import type { ListKey, MemberKey } from '../crypto/index.ts';
import type { FromOpenThread, OpenPoolKeySettings, ToOpenThread, WarmList } from './open-pool.ts';
import { errorSummary } from '../util/errors.ts';

const keys = workerData as OpenPoolKeySettings;
const listKeys = new Map<string, Promise<ListKey>>();
const memberKeys = new Map<string, Promise<MemberKey | null>>();

function listKey(listName: string): Promise<ListKey> {
  let key = listKeys.get(listName);
  if (!key) {
    // Read only: the pipeline loaded (or made) the key before sending a task, and the disk may be read-only by now.
    key = readListKey({ dataDir: keys.dataDir, listName, passphrase: keys.passphrase });
    listKeys.set(listName, key);
    key.catch(() => listKeys.delete(listName));
  }
  return key;
}

/** Parsed once per armored text, as src/lists/keyring.ts does in the pipeline's thread. */
function memberKey(armored: string): Promise<MemberKey | null> {
  let key = memberKeys.get(armored);
  if (!key) {
    key = parseMemberKey(armored).catch(() => null);
    memberKeys.set(armored, key);
  }
  return key;
}

async function open(task: Extract<ToOpenThread, { type: 'open' }>): Promise<FromOpenThread> {
  try {
    const members: Array<{ address: string; key: MemberKey }> = [];
    for (const member of task.members) {
      const key = await memberKey(member.armored);
      if (key) members.push({ address: member.address, key });
    }
    const raw = Buffer.from(task.raw.buffer, task.raw.byteOffset, task.raw.byteLength);
    return { type: 'opened', id: task.id, result: await openMessage(raw, { listKey: await listKey(task.listName), members }) };
  } catch (error) {
    // Name and stack frames only: the message of an exception may quote the input.
    return { type: 'failed', id: task.id, ...errorSummary(error) };
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (message: ToOpenThread) => {
    if (message.type === 'open') {
      void open(message).then((reply) => port.postMessage(reply));
      return;
    }
    // Modules are loaded by now; the lists' keys next, so the first task is answered as fast as any other. A key that
    // fails to load here fails its tasks later, with the reason, like without warming.
    void warm(message.lists).finally(() => port.postMessage({ type: 'ready' } satisfies FromOpenThread));
  });
}

async function warm(lists: WarmList[]): Promise<void> {
  for (const list of lists) {
    await listKey(list.listName).catch(() => undefined);
    for (const member of list.members) await memberKey(member.armored);
  }
}
