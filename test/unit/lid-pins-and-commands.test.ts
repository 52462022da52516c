import { parseHeartbeat } from '../../domain/heartbeat';
import { hashPin, protectPins, redactPins, seal, unseal } from '../../domain/lid-pins';
import { advanceCommand, parseCommandAck } from '../../domain/commands';
import { commandIdForRequest } from '../../domain/command-ids';

const secret = 'unit-test-secret-0123456789';

describe('PIN hashing', () => {
  it('gives the same digest for the same robot and PIN, another for another robot or secret', () => {
    expect(hashPin(secret, 'R1', '1234')).toBe(hashPin(secret, 'R1', '1234'));
    expect(hashPin(secret, 'R1', '1234')).toMatch(/^[0-9a-f]{64}$/);
    expect(hashPin(secret, 'R2', '1234')).not.toBe(hashPin(secret, 'R1', '1234'));
    expect(hashPin(`${secret}x`, 'R1', '1234')).not.toBe(hashPin(secret, 'R1', '1234'));
  });

  it('replaces the PIN of every entry in a heartbeat with its digest', () => {
    const parsed = parseHeartbeat(
      'robot/R1/status',
      JSON.stringify({ serial: 'R1', timestamp: 5, events: [{ type: 'PIN_ENTRY', pin: '4321', timestamp: 4 }, { type: 'OTHER', timestamp: 3 }] }),
      6,
    );
    if (!parsed.ok) throw new Error(parsed.reason);
    const hb = protectPins(parsed.heartbeat, secret);
    expect(hb.events).toEqual([{ type: 'PIN_ENTRY', timestamp: 4, pinHash: hashPin(secret, 'R1', '4321') }, { type: 'OTHER', timestamp: 3 }]);
    expect(JSON.stringify(hb)).not.toContain('4321');
    expect(protectPins(parsed.heartbeat, undefined).events[0]).toEqual({ type: 'PIN_ENTRY', timestamp: 4 });
  });

  it('seals parameters so that only the secret opens them', () => {
    const sealed = seal(secret, { pin: '4321' });
    expect(sealed).not.toContain('4321');
    expect(unseal(secret, sealed)).toEqual({ pin: '4321' });
    expect(() => unseal('another-secret-0123456789', sealed)).toThrow();
  });

  it('redacts PINs from stored payloads, quoted or not', () => {
    expect(redactPins('{"events":[{"pin":"12a4"},{"pin": 5678}]}')).toBe('{"events":[{"pin":"[redacted]"},{"pin": "[redacted]"}]}');
  });
});

describe('commands', () => {
  it('only move forward', () => {
    expect(advanceCommand('SENT', 'ACKNOWLEDGED')).toBe('ACKNOWLEDGED');
    expect(advanceCommand('ACKNOWLEDGED', 'EXECUTED')).toBe('EXECUTED');
    expect(advanceCommand('PENDING', 'EXECUTED')).toBe('EXECUTED');
    expect(advanceCommand('EXECUTED', 'ACKNOWLEDGED')).toBe('EXECUTED');
    expect(advanceCommand('EXECUTED', 'FAILED')).toBe('EXECUTED');
    expect(advanceCommand('TIMEOUT', 'EXECUTED')).toBe('TIMEOUT');
  });

  it('derive one id from a robot and requestId', () => {
    const id = commandIdForRequest('R1', 'req-1');
    expect(id).toBe(commandIdForRequest('R1', 'req-1'));
    expect(id).not.toBe(commandIdForRequest('R2', 'req-1'));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('acks are parsed with the serial from the topic, and bad ones name the field', () => {
    const commandId = commandIdForRequest('R1', 'x');
    expect(parseCommandAck('robot/R1/command/ack', JSON.stringify({ commandId, status: 'EXECUTED' }))).toEqual({
      ok: true,
      serial: 'R1',
      ack: { commandId, status: 'EXECUTED' },
    });
    expect(parseCommandAck('robot/R1/command/ack', JSON.stringify({ commandId, status: 'DONE' }))).toMatchObject({ ok: false, reason: expect.stringMatching(/^status: /) });
    expect(parseCommandAck('robot/R1/command/ack', '{')).toEqual({ ok: false, reason: 'payload: not valid JSON' });
    expect(parseCommandAck('robot/R1/status', '{}')).toMatchObject({ ok: false, reason: expect.stringMatching(/^topic: /) });
  });
});
