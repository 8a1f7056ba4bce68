// Limits on automatic mail: a list answers one address a few times a day, and tells its admins of the first refusals of an hour.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announce, domain, headerOf, serverAdmin, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import { makeMessage } from '../helpers/smtp.ts';

let world: ListWorld;

beforeAll(async () => {
  world = await startListWorld({ server: { notices: { autoRepliesPerAddressPerDay: 2, refusalNoticesPerListPerHour: 1 } } });
});

afterAll(async () => {
  await world?.stop();
});

async function sendAndSettle(from: string, to: string, subject: string): Promise<{ reason: string | null; to: string[][] }> {
  const mark = world.relay.messages.length;
  const id = await world.send(from, [to], makeMessage({ from, to, subject, body: 'hello\r\n' }));
  await world.waitForState(id, ['done', 'rejected', 'discarded', 'held', 'shunted']);
  const messages = await world.settle(mark);
  const row = world.daemon.daemon!.db.prepare('SELECT reason FROM spool_rows WHERE id = ?').get(id) as { reason: string | null };
  return { reason: row.reason, to: messages.map((message) => message.to) };
}

describe('automatic mail limits', () => {
  it('answers -sendkey@ twice a day per address, then records the request without a reply; another address still gets one', async () => {
    const sendkey = `${announce}-sendkey@${domain}`;
    const asker = 'curious@asker.example';
    const answers = [];
    for (let round = 0; round < 3; round++) answers.push(await sendAndSettle(asker, sendkey, 'key please'));
    expect(answers.map((answer) => answer.to.filter((to) => to.includes(asker)).length)).toEqual([1, 1, 0]);
    expect(answers[2].reason).toMatch(/reply withheld/);
    const other = await sendAndSettle('other@asker.example', sendkey, 'key please');
    expect(other.to).toEqual([['other@asker.example']]);
  });

  it('bounces refused posts to the sender within the limit, and notifies the admins of the first refusal of the hour only', async () => {
    const listAddress = `${announce}@${domain}`;
    const sender = 'stranger@elsewhere.example';
    const results = [];
    for (let round = 0; round < 3; round++) results.push(await sendAndSettle(sender, listAddress, `not signed ${round}`));
    for (const result of results) expect(result.reason).toMatch(/rejected|not-encrypted|unsigned|decrypt/);
    expect(results.map((result) => result.to.filter((to) => to.includes(sender)).length)).toEqual([1, 1, 0]);
    expect(results.map((result) => result.to.filter((to) => to.includes(serverAdmin) || to.includes(world.security.address)).length > 0)).toEqual([true, false, false]);
    // Every refusal is still in the spool with its reason, and counted.
    const refused = world.daemon.daemon!.db.prepare(`SELECT COUNT(*) AS count FROM spool_rows WHERE state = 'rejected' AND mail_from = ?`).get(sender) as { count: number };
    expect(refused.count).toBe(3);
  });
});
