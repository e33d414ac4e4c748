// Isolation specs over the wire: a spec session is a node-postgres connection, and whether
// it waits for a lock is read from pg_stat_activity (wait_event_type = 'Lock') through a
// separate monitor connection — the same question on Boreal and on PostgreSQL 15.

import pg from 'pg';
import type { SpecSession } from './spec.js';

const text = { getTypeParser: () => (value: string) => value } as never;

export class WireMonitor {
  /**
   * Bumped whenever a step finishes: a lock wait seen before may have ended with it, so a
   * session counts as waiting only on a poll that started after the last bump.
   */
  epoch = 0;

  private constructor(private readonly client: pg.Client) {}

  static async connect(url: string): Promise<WireMonitor> {
    const client = new pg.Client({ connectionString: url, types: text });
    await client.connect();
    client.on('error', () => undefined);
    return new WireMonitor(client);
  }

  async waiting(pid: number): Promise<boolean> {
    const result = await this.client.query({ text: 'SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1', values: [pid], rowMode: 'array' });
    return result.rows.length > 0 && result.rows[0]![0] === 'Lock';
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

export class WireSession implements SpecSession {
  private waitingNow = false;
  private waitingEpoch = -1;
  private running = false;

  private constructor(
    private readonly client: pg.Client,
    private readonly pid: number,
    private readonly monitor: WireMonitor,
  ) {}

  static async connect(url: string, monitor: WireMonitor): Promise<WireSession> {
    const client = new pg.Client({ connectionString: url, types: text });
    await client.connect();
    client.on('error', () => undefined);
    const pid = Number((await client.query({ text: 'SELECT pg_backend_pid()', rowMode: 'array' })).rows[0]![0]);
    return new WireSession(client, pid, monitor);
  }

  isWaiting(): boolean {
    return this.waitingNow && this.waitingEpoch === this.monitor.epoch;
  }

  async run(sql: string): Promise<string> {
    this.running = true;
    this.waitingNow = false;
    const poll = async (): Promise<void> => {
      while (this.running) {
        await new Promise((resolve) => setTimeout(resolve, 15));
        if (!this.running) break;
        const epoch = this.monitor.epoch;
        const waiting = await this.monitor.waiting(this.pid).catch(() => false);
        if (this.running) {
          this.waitingNow = waiting;
          this.waitingEpoch = epoch;
        }
      }
    };
    const polling = poll();
    try {
      const result = await this.client.query({ text: sql, rowMode: 'array' });
      const last = Array.isArray(result) ? (result as pg.QueryArrayResult[])[(result as pg.QueryArrayResult[]).length - 1]! : result;
      // COMMIT of a failed transaction answers ROLLBACK: the specs record that outcome.
      if (last.fields.length === 0) return last.command === 'ROLLBACK' && /^\s*(commit|end)\b/i.test(sql) ? 'ROLLBACK' : 'ok';
      if (last.rows.length === 0) return '(no rows)';
      return last.rows.map((row) => row.map((value) => (value === null ? 'NULL' : String(value))).join('|')).join(' ; ');
    } finally {
      this.running = false;
      this.waitingNow = false;
      this.monitor.epoch++;
      await polling;
    }
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}
