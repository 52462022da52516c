import http from 'node:http';

/** A Server-Sent Events client for tests: parses complete messages only, as EventSource does. */
export class SseClient<T = unknown> {
  readonly messages: { id: string; event: string; data: T }[] = [];
  readonly comments: string[] = [];
  ended = false;
  private buffer = '';

  private constructor(
    readonly response: http.IncomingMessage,
    private readonly request: http.ClientRequest,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.take(chunk));
    const end = () => (this.ended = true);
    response.on('end', end);
    response.on('close', end);
    response.on('error', end);
    request.on('error', end);
  }

  /** GET `url` with `key`; resolves with the response's headers. */
  static open<T>(url: string, key: string, headers: Record<string, string> = {}): Promise<SseClient<T>> {
    return new Promise((resolve, reject) => {
      const request = http.get(url, { headers: { 'x-api-key': key, accept: 'text/event-stream', ...headers } });
      request.once('response', (response) => resolve(new SseClient<T>(response, request)));
      request.once('error', reject);
    });
  }

  get lastId(): string {
    return this.messages[this.messages.length - 1].id;
  }

  pause(): void {
    this.response.pause();
  }

  resume(): void {
    this.response.resume();
  }

  close(): void {
    this.request.destroy();
  }

  private take(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const fields: Record<string, string[]> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments.push(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        (fields[name] ??= []).push(colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, ''));
      }
      if (fields.data) this.messages.push({ id: fields.id?.[0] ?? '', event: fields.event?.[0] ?? 'message', data: JSON.parse(fields.data.join('\n')) });
    }
  }
}
