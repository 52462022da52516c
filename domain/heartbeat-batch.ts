import type { EventDraft } from './events';
import type { Heartbeat } from './heartbeat';
import { lidWorkFor, rememberLidSightings, type LidTracker, type LidWork } from './lid';
import { applyHeartbeat, placeLateHeartbeat, rememberComponents, type ComponentSighting, type RobotState } from './robot-state';

/** What the robot workflow keeps to take heartbeats: its shadow and decisions, the lid's bookkeeping, recent component codes. */
export type RobotBook = { state: RobotState; lidTracker: LidTracker; componentsSeen: ComponentSighting[] };

/**
 * One signal's heartbeats, as the robot workflow takes them: the events they raise and the lid
 * work they ask for. With `placeLate` they are taken in robot-time order (after an ingest restart a
 * broker's resent backlog comes mixed with live heartbeats) and a late one is placed among the
 * sightings of this batch and the ones before (domain/lid.ts, `placeLateHeartbeat`); without it,
 * in arrival order with late ones ignored, as runs started before it replay. `lidService` off: no
 * lid work, for runs started before the lid service.
 */
export function takeHeartbeats(
  book: RobotBook,
  heartbeats: Heartbeat[],
  rules: { placeLate: boolean; lidService: boolean },
): { book: RobotBook; events: EventDraft[]; lidWork: LidWork[] } {
  let { state, lidTracker, componentsSeen } = book;
  const batch = rules.placeLate ? [...heartbeats].sort((a, b) => a.timestamp - b.timestamp) : heartbeats;
  if (rules.placeLate) {
    lidTracker = rememberLidSightings(lidTracker, batch);
    componentsSeen = rememberComponents(componentsSeen, batch);
  }
  const events: EventDraft[] = [];
  const lidWork: LidWork[] = [];
  for (const heartbeat of batch) {
    const inOrder = applyHeartbeat(state, heartbeat);
    const applied = inOrder.state !== state;
    const t = applied || !rules.placeLate ? inOrder : placeLateHeartbeat(state, heartbeat, componentsSeen);
    if (rules.lidService) {
      const lid = lidWorkFor(lidTracker, heartbeat, applied, rules.placeLate);
      lidTracker = lid.tracker;
      lidWork.push(...lid.work);
    }
    state = t.state;
    events.push(...t.events);
  }
  return { book: { state, lidTracker, componentsSeen }, events, lidWork };
}
