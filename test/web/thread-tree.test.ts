// The reply tree of a thread: parents by In-Reply-To then References, reading order, capped depth, lying headers.
import { describe, expect, it } from 'vitest';
import type { ArchiveSummary } from '../../src/archive/queries.ts';
import { maxShownDepth, threadTree } from '../../src/web/thread-tree.ts';

let nextId = 1;
function message(messageId: string, replyTargets: string[] = [], day = nextId): { summary: ArchiveSummary; replyTargets: string[] } {
  const id = nextId++;
  return {
    summary: { id, list: 'l', messageId, threadId: 1, subject: messageId, senderName: '', senderAddress: '', sentAt: null, receivedAt: new Date(Date.UTC(2026, 0, day)), size: 0, attachmentCount: 0 },
    replyTargets,
  };
}

describe('threadTree', () => {
  it('nests by the nearest archived target, orders depth first with older replies first, and keeps orphans as roots', () => {
    const messages = [
      message('root'),
      message('b', ['root'], 5),
      message('a', ['root'], 3),
      // In-Reply-To names a message that is not archived: References' nearest archived one is the parent.
      message('a1', ['missing', 'a', 'root'], 4),
      message('orphan', ['gone'], 6),
    ];
    const tree = threadTree(messages);
    expect(tree.map((node) => [node.summary.messageId, node.depth, node.parent?.messageId ?? null])).toEqual([
      ['root', 0, null],
      ['a', 1, 'root'],
      ['a1', 2, 'a'],
      ['b', 1, 'root'],
      ['orphan', 0, null],
    ]);
    expect(tree[0]!.replies.map((reply) => reply.messageId)).toEqual(['a', 'b']);
  });

  it('caps the shown depth of a long back-and-forth, and survives headers that answer each other in a circle', () => {
    const chain = [message('m0')];
    for (let index = 1; index < 9; index++) chain.push(message(`m${index}`, [`m${index - 1}`]));
    const tree = threadTree(chain);
    expect(tree.map((node) => node.depth)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(tree.map((node) => node.shownDepth)).toEqual([0, 1, 2, 3, 4, 5, 5, 5, 5].map((depth) => Math.min(depth, maxShownDepth)));

    const circle = threadTree([message('x', ['y']), message('y', ['x'])]);
    expect(circle).toHaveLength(2);
    expect(circle.filter((node) => node.parent === null)).toHaveLength(1);
    // A message that names itself is a root.
    expect(threadTree([message('self', ['self'])])[0]!.depth).toBe(0);
  });
});
