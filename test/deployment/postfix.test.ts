// Postfix end to end with the snippets of docs/deployment.md: a post submitted to Postfix reaches a list through the transport map, and the copies leave through Postfix.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { publicListOf, repoRoot, startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { freePort, startPostfix, type PostfixInstance } from '../helpers/postfix.ts';
import { startRelayPeer, type RelayPeer } from '../helpers/relay.ts';
import { skipWithoutRoot } from '../helpers/root.ts';
import { makeMessage, sendMail } from '../helpers/smtp.ts';

const list = 'predisclosure-applications@lists.example.org';
const members = ['security@xenproject.example', 'security@vendor-a.example'];

/** The code block after `<!-- tested: NAME -->` in docs/deployment.md, as written there. */
function snippet(name: string): string {
  const doc = readFileSync(join(repoRoot, 'docs/deployment.md'), 'utf8');
  const at = doc.indexOf(`<!-- tested: ${name} -->`);
  if (at < 0) throw new Error(`docs/deployment.md has no snippet marked "tested: ${name}"`);
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(doc.slice(at));
  if (!block) throw new Error(`no code block after the "tested: ${name}" mark`);
  return block[1];
}

const configLines = (text: string) => text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));

describe.skipIf(skipWithoutRoot('postfix starts its master process as root, so this test'))('Postfix in front of Embargo, as docs/deployment.md sets it up', () => {
  let internet: RelayPeer;
  let postfix: PostfixInstance | null = null;
  let daemon: TestDaemon | null = null;
  afterAll(async () => {
    await daemon?.stop();
    await postfix?.stop();
    await internet?.close();
  });

  it('a post sent to Postfix reaches the list through the transport map, and every copy leaves through Postfix', async () => {
    // Stands in for the members' mail servers on the Internet (their domains have no DNS here).
    internet = await startRelayPeer();
    const postfixPort = await freePort();

    // Embargo relays through Postfix: the documented relay setting, with the test's port for Postfix's 25.
    const relay = (parse(snippet('server.yaml relay')) as { relay: { host: string; port: number } }).relay;
    expect(relay).toEqual({ host: '127.0.0.1', port: 25 });
    daemon = await startTestDaemon({
      relay: { ...relay, port: postfixPort },
      server: { relay: { retrySchedule: [1] }, schedules: { retrySweep: '* * * * * *' } },
      lists: { 'predisclosure-applications': publicListOf(members.map((email, index) => ({ email, keyFile: index === 0 ? 'xenproject-security.asc' : 'vendor-a.asc' }))) },
    });
    const embargoPort = daemon.smtpPort;

    const transport = snippet('postfix embargo-transport');
    expect(transport).toContain('smtp:[127.0.0.1]:2525');
    postfix = await startPostfix({
      port: postfixPort,
      files: { 'embargo-transport': transport.replace('[127.0.0.1]:2525', `[127.0.0.1]:${embargoPort}`) },
      mainCf: (dir) => [
        'myhostname = mx.embargo-test.localdomain',
        'mydestination =',
        // The documented snippets, with the transport map in this instance's directory.
        ...configLines(snippet('postfix main.cf (MX)')).map((line) => line.replace('/etc/postfix/', `${dir}/`)),
        ...configLines(snippet('postfix main.cf (relay)')),
        // Test only: everything not for the list domain goes to the recording peer instead of the members' MX hosts.
        `relayhost = [127.0.0.1]:${internet.port}`,
      ],
    });

    const from = 'applicant@vendor.example';
    const sent = await sendMail({ port: postfix.port, from, to: [list], raw: makeMessage({ from, to: list, subject: 'application via the MX' }) });
    expect(sent.code, postfix.maillog()).toBe(250);

    try {
      await internet.waitForMessages(members.length, 90_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${postfix.maillog()}`);
    }
    for (const member of members) {
      const [copy] = internet.deliveredTo(member);
      expect(copy, member).toBeDefined();
      // The list's VERP return path, and the list copy itself (the list's signature and List-Id).
      expect(copy.from).toMatch(/^predisclosure-applications-bounces\+[^@]+@lists\.example\.org$/);
      const text = copy.raw.toString('latin1');
      expect(text).toMatch(/^List-Id: .*predisclosure-applications\.lists\.example\.org/m);
      // The copy came from Embargo through Postfix (list copies never carry the inbound trace fields, so one hop shows).
      const head = text.slice(0, text.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
      expect(head.match(/^Received: .*by mx\.embargo-test\.localdomain \(Postfix\)/gm)?.length ?? 0, head).toBeGreaterThanOrEqual(1);
    }
    const postfixLog = postfix.maillog();
    expect(postfixLog).toMatch(new RegExp(`to=<${list}>.*relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${embargoPort}.*status=sent`));
  });
});
