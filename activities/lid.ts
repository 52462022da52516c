import type { Prisma } from '../infra/prisma';
import {
  finishLidCycle,
  judgePinEntry,
  openLidCycle,
  readLid,
  recordLidClosed,
  type FinishLidCycleInput,
  type OpenLidCycleInput,
  type PinEntryInput,
} from '../store/lid';

/** The lid workflows' activities: bindings over store/lid.ts, where PINs, entries and cycles are kept. */
export function createLidActivities(deps: { prisma: Prisma }) {
  return {
    judgePinEntry: (input: PinEntryInput) => judgePinEntry(deps.prisma, input),
    openLidCycle: (input: OpenLidCycleInput) => openLidCycle(deps.prisma, input),
    finishLidCycle: (input: FinishLidCycleInput) => finishLidCycle(deps.prisma, input),
    recordLidClosed: (input: { cycleId: string; endedAt: number }) => recordLidClosed(deps.prisma, input),
    readLid: (serial: string) => readLid(deps.prisma, serial),
  };
}
