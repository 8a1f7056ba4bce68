// Postpone, cancel or release an advisory now: the one set of rules for the CLI and for posters' signed commands.
import type { Db } from '../store/database.ts';
import { parseRfc3339 } from '../archive/embargo-date.ts';
import { describeDate } from './notify.ts';
import { addEvent, findAdvisory, setSchedule, type Advisory } from './store.ts';

export type ControlAction = { kind: 'postpone'; until: Date } | { kind: 'cancel' } | { kind: 'release' };

export type ControlOutcome =
  | { ok: true; advisory: Advisory; summary: string }
  | { ok: false; reason: string };

/** Parses the action words of `advisory postpone ID DATE`, `advisory cancel ID`, `advisory release ID`. */
export function parseControl(action: string | undefined, dateText: string | undefined): ControlAction | { error: string } {
  switch ((action ?? '').toLowerCase()) {
    case 'postpone':
    case 'extend': {
      const until = dateText ? parseRfc3339(dateText) : null;
      if (!until) return { error: 'postpone needs a new embargo end as an RFC 3339 time with an offset, e.g. 2027-01-15T12:00:00Z' };
      return { kind: 'postpone', until };
    }
    case 'cancel':
      return { kind: 'cancel' };
    case 'release':
      return { kind: 'release' };
    default:
      return { error: 'the action must be postpone, cancel or release' };
  }
}

/**
 * Applies one change in the caller's transaction. A release happens at the next release pass (the CLI runs one
 * at once), so it goes through the same exactly-once publication as a scheduled one.
 */
export function applyControl(db: Db, list: string, advisoryId: string, action: ControlAction, actor: string, now: Date): ControlOutcome {
  const advisory = findAdvisory(db, list, advisoryId);
  if (!advisory) return { ok: false, reason: `no advisory ${advisoryId} on ${list}` };
  if (advisory.state === 'released') return { ok: false, reason: `${advisory.advisoryId} was released ${describeDate(advisory.releasedAt)}; a release cannot be undone` };
  let change: { state: Advisory['state']; embargoUntil: Date | null };
  let summary: string;
  switch (action.kind) {
    case 'postpone':
      if (action.until.getTime() <= now.getTime()) return { ok: false, reason: `${describeDate(action.until)} has passed; use release to publish now` };
      change = { state: 'embargoed', embargoUntil: action.until };
      summary = `${advisory.advisoryId}: embargo ${advisory.embargoUntil ? `moved from ${describeDate(advisory.embargoUntil)} ` : ''}to ${describeDate(action.until)}`;
      break;
    case 'cancel':
      if (advisory.state === 'cancelled') return { ok: false, reason: `${advisory.advisoryId} is cancelled already` };
      change = { state: 'cancelled', embargoUntil: null };
      summary = `${advisory.advisoryId}: release cancelled${advisory.embargoUntil ? ` (it was due ${describeDate(advisory.embargoUntil)})` : ''}; nothing will be published unless a new revision or command schedules it`;
      break;
    case 'release':
      change = { state: 'embargoed', embargoUntil: now };
      summary = `${advisory.advisoryId}: released now, ahead of ${advisory.embargoUntil ? describeDate(advisory.embargoUntil) : 'any date'}`;
      break;
  }
  return db.transaction((): ControlOutcome => {
    if (!setSchedule(db, advisory, change, now)) return { ok: false, reason: `${advisory.advisoryId} changed at the same moment; look again and retry` };
    addEvent(db, advisory.rowId, now, action.kind === 'postpone' ? 'postponed' : action.kind === 'cancel' ? 'cancelled' : 'release-requested', summary, actor);
    return { ok: true, advisory: findAdvisory(db, list, advisoryId)!, summary };
  })();
}
