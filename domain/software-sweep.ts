/** Fleet-wide coverage at `devicesPerSecond`, never more often than `minIntervalMs`. */
export function sweepIntervalMs(fleetSize: number, devicesPerSecond: number, minIntervalMs: number): number {
  return Math.max(minIntervalMs, Math.ceil((fleetSize / devicesPerSecond) * 1000));
}
