// Threat: VERP return paths cross every relay in clear; whoever saw two of a member's can alternate them in forged DSNs to get the member suspended.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isSuspended, listBounceRecords } from '../../src/queues/bounce-scores.ts';
import { buildPost, copiesOfPost, discussion, domain, startListWorld } from '../helpers/lists.ts';
import type { ListWorld } from '../helpers/lists.ts';
import { sendMail } from '../helpers/smtp.ts';

const listAddress = `${discussion}@${domain}`;
let world: ListWorld;

beforeAll(async () => {
  world = await startListWorld();
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

/** An RFC 3464 report saying the member's mailbox does not exist, as any MTA (or anyone) can write it. */
function forgedDsn(returnPath: string, recipient: string, index: number): string {
  return [
    'From: Mail Delivery System <MAILER-DAEMON@mx.attacker.example>',
    `To: ${returnPath}`,
    `Subject: Undelivered Mail Returned to Sender (${index})`,
    `Message-ID: <forged-dsn-${index}-${Date.now()}@mx.attacker.example>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN"',
    '',
    '--DSN',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'The mail system could not deliver your message.',
    '',
    '--DSN',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.attacker.example',
    '',
    `Final-Recipient: rfc822; ${recipient}`,
    'Action: failed',
    'Status: 5.1.1',
    'Diagnostic-Code: smtp; 550 5.1.1 User unknown',
    '',
    '--DSN--',
    '',
  ].join('\r\n');
}

it('alternating two real VERP tokens of a member in six forged DSNs does not suspend the member', async () => {
  // Two posts to the list: vendor B's copies go out with two different return paths, seen by every relay on the way.
  const returnPaths: string[] = [];
  for (const text of ['First post of the day.', 'Second post of the day.']) {
    const mark = world.relay.messages.length;
    const post = await buildPost(world, { from: world.vendorA, to: listAddress, subject: text, body: text });
    const id = await world.send(world.vendorA.address, [listAddress], post.raw);
    expect(await world.waitForState(id, ['done', 'rejected', 'shunted'])).toBe('done');
    const copy = copiesOfPost(await world.settle(mark), id).find((message) => message.to.includes(world.vendorB.address))!;
    returnPaths.push(copy.from);
  }
  expect(returnPaths[0]).not.toBe(returnPaths[1]);
  expect(returnPaths.every((path) => path.startsWith(`${discussion}-bounces+`))).toBe(true);

  // Six forged reports, alternating the two tokens (the old check compared only the last counted row).
  const ids: string[] = [];
  for (let index = 0; index < 6; index++) {
    const returnPath = returnPaths[index % 2]!;
    const result = await sendMail({ port: world.daemon.smtpPort, from: '', to: [returnPath], raw: forgedDsn(returnPath, world.vendorB.address, index) });
    expect(result.code).toBe(250);
    ids.push(result.spoolId!);
  }
  for (const id of ids) await world.waitForState(id, ['done', 'discarded', 'rejected', 'shunted']);

  const db = world.daemon.daemon!.db;
  expect(isSuspended(db, discussion, world.vendorB.address)).toBe(false);
  const [record] = listBounceRecords(db, { list: discussion });
  // The first report counted; the rest were the same day or a token already counted.
  expect(record).toMatchObject({ address: world.vendorB.address, bouncesTotal: 1, suspendedAt: null });
  expect(record!.score).toBeLessThanOrEqual(1);

  // Vendor B still gets the next post.
  const mark = world.relay.messages.length;
  const post = await buildPost(world, { from: world.vendorA, to: listAddress, subject: 'Third post', body: 'Still there?' });
  const id = await world.send(world.vendorA.address, [listAddress], post.raw);
  expect(await world.waitForState(id, ['done', 'rejected', 'shunted'])).toBe('done');
  expect(copiesOfPost(await world.settle(mark), id).some((message) => message.to.includes(world.vendorB.address))).toBe(true);
});
