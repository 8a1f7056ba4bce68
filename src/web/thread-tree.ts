// Arranges a thread's messages as a reply tree (In-Reply-To first, then References), in reading order with a capped depth.
import type { ArchiveSummary } from '../archive/queries.ts';

/** Deeper replies are drawn at this depth, so a long back-and-forth stays readable on a phone. */
export const maxShownDepth = 5;

export interface ThreadNode {
  summary: ArchiveSummary;
  /** The archived message this one answers, when it is in the thread. */
  parent: ArchiveSummary | null;
  replies: ArchiveSummary[];
  /** Depth in the tree (0: a message that answers nothing archived). */
  depth: number;
  /** The depth the page indents it by: depth, capped at maxShownDepth. */
  shownDepth: number;
}

const byArrival = (a: ArchiveSummary, b: ArchiveSummary) => a.receivedAt.getTime() - b.receivedAt.getTime() || a.id - b.id;

/**
 * The thread's messages depth first (each message followed by its replies, oldest reply first). Each message's
 * parent is the nearest of its reply targets archived in this thread; a reply whose parent is missing starts a
 * branch of its own at depth 0, in arrival order.
 */
export function threadTree(messages: Array<{ summary: ArchiveSummary; replyTargets: string[] }>): ThreadNode[] {
  const byId = new Map(messages.map((message) => [message.summary.messageId, message.summary]));
  const parentOf = new Map<number, ArchiveSummary>();
  for (const { summary, replyTargets } of messages) {
    for (const target of replyTargets) {
      const parent = byId.get(target);
      if (!parent || parent.id === summary.id) continue;
      // Headers can lie in circles (A answers B, B answers A): a parent that descends from this message is refused.
      let ancestor: ArchiveSummary | undefined = parent;
      while (ancestor && ancestor.id !== summary.id) ancestor = parentOf.get(ancestor.id);
      if (ancestor) continue;
      parentOf.set(summary.id, parent);
      break;
    }
  }
  const children = new Map<number, ArchiveSummary[]>();
  for (const { summary } of messages) {
    const parent = parentOf.get(summary.id);
    if (parent) children.set(parent.id, [...(children.get(parent.id) ?? []), summary]);
  }
  for (const replies of children.values()) replies.sort(byArrival);

  const ordered: ThreadNode[] = [];
  const roots = messages.map((message) => message.summary).filter((summary) => !parentOf.has(summary.id)).sort(byArrival);
  // Depth first without recursion: a thread of thousands of nested replies must not overflow the stack.
  const stack = roots.reverse().map((summary) => ({ summary, depth: 0 }));
  while (stack.length > 0) {
    const { summary, depth } = stack.pop()!;
    const replies = children.get(summary.id) ?? [];
    ordered.push({ summary, parent: parentOf.get(summary.id) ?? null, replies, depth, shownDepth: Math.min(depth, maxShownDepth) });
    for (const reply of [...replies].reverse()) stack.push({ summary: reply, depth: depth + 1 });
  }
  return ordered;
}
