import { eventMessage, matchesFilter, resumeAfter, sseComment, sseMessage, sseRetry } from '../../api/sse';
import type { StoredEvent } from '../../store/events';
import { amqpMessage, exchangeName } from '../../outbox/messages';

const event: StoredEvent = {
  seq: 42n,
  id: 'evt-1',
  type: 'Device.ConnectivityChanged',
  serial: 'ABC123',
  occurredAt: '2026-01-02T03:04:05.678Z',
  data: { online: false, previousOnline: true },
};

/** Parses frames the way an EventSource does (WHATWG "Interpreting an event stream"), enough for these tests. */
function parse(stream: string): { id?: string; event?: string; data: string; comments: string[] }[] {
  return stream
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      const message: { id?: string; event?: string; data: string; comments: string[] } = { data: '', comments: [] };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) message.comments.push(line.slice(1).trim());
        else {
          const [field, ...rest] = line.split(':');
          const value = rest.join(':').replace(/^ /, '');
          if (field === 'data') data.push(value);
          if (field === 'id') message.id = value;
          if (field === 'event') message.event = value;
        }
      }
      message.data = data.join('\n');
      return message;
    });
}

describe('Server-Sent Events framing', () => {
  test('a domain event becomes one message: id is its seq, event its type, data the contract JSON', () => {
    const [message] = parse(eventMessage(event));
    expect(message.id).toBe('42');
    expect(message.event).toBe('Device.ConnectivityChanged');
    expect(JSON.parse(message.data)).toEqual({
      id: 'evt-1',
      type: 'Device.ConnectivityChanged',
      serial: 'ABC123',
      occurredAt: '2026-01-02T03:04:05.678Z',
      data: { online: false, previousOnline: true },
    });
  });

  test('data with line breaks is split into data lines and rejoined by the client', () => {
    expect(sseMessage({ data: 'a\nb\r\nc' })).toBe('data: a\ndata: b\ndata: c\n\n');
    expect(parse(sseMessage({ data: 'a\nb\r\nc' }))[0].data).toBe('a\nb\nc');
  });

  test('line breaks cannot smuggle fields into id, event or a comment', () => {
    const frame = sseMessage({ id: '1\nevent: forged', event: 'x\r\ndata: forged', data: '{}' });
    expect(frame.split('\n').filter((l) => l.startsWith('event:'))).toHaveLength(1);
    expect(frame.split('\n').filter((l) => l.startsWith('data:'))).toEqual(['data: {}']);
    expect(sseComment('keep\nalive')).toBe(': keep alive\n\n');
  });

  test('the retry hint and comments are frames of their own', () => {
    expect(sseRetry(2000)).toBe('retry: 2000\n\n');
    expect(parse(sseComment('keepalive'))[0]).toEqual({ data: '', comments: ['keepalive'] });
  });
});

describe('where a stream resumes', () => {
  test('Last-Event-ID wins over ?after=, because EventSource reconnects with the original URL', () => {
    expect(resumeAfter('17', '5')).toBe(17n);
    expect(resumeAfter(undefined, '5')).toBe(5n);
  });

  test('neither: from now on', () => {
    expect(resumeAfter(undefined, undefined)).toBeUndefined();
  });

  test('filters match on type and serial, each optional', () => {
    expect(matchesFilter({}, event)).toBe(true);
    expect(matchesFilter({ type: 'Device.ConnectivityChanged', serial: 'ABC123' }, event)).toBe(true);
    expect(matchesFilter({ type: 'Device.HealthDegraded' }, event)).toBe(false);
    expect(matchesFilter({ serial: 'OTHER' }, event)).toBe(false);
    expect(matchesFilter({ serial: 'ABC123' }, { ...event, serial: null })).toBe(false);
  });
});

describe('events on RabbitMQ', () => {
  test('the exchange is named as seed 002 prefixes exchanges with the environment', () => {
    expect(exchangeName('staging')).toBe('staging.devices/device-event');
    expect(exchangeName('local')).toBe('local.devices/device-event');
  });

  test('the routing key is the event type and the message id the event id, so consumers can route and deduplicate', () => {
    const message = amqpMessage(event);
    expect(message.routingKey).toBe('Device.ConnectivityChanged');
    expect(message.options).toMatchObject({
      messageId: 'evt-1',
      type: 'Device.ConnectivityChanged',
      persistent: true,
      contentType: 'application/json',
      timestamp: Math.floor(Date.parse(event.occurredAt) / 1000),
      headers: { seq: '42', serial: 'ABC123' },
    });
    expect(JSON.parse(message.content.toString())).toEqual({
      id: 'evt-1',
      type: 'Device.ConnectivityChanged',
      serial: 'ABC123',
      occurredAt: '2026-01-02T03:04:05.678Z',
      data: { online: false, previousOnline: true },
    });
  });

  test('an event about no robot carries no serial header', () => {
    const message = amqpMessage({ ...event, serial: null, type: 'Rollout.Started' });
    expect(message.options.headers).toEqual({ seq: '42' });
    expect(message.routingKey).toBe('Rollout.Started');
  });

  test('the same event gives the same message every time it is published', () => {
    expect(amqpMessage(event)).toEqual(amqpMessage({ ...event }));
  });
});
