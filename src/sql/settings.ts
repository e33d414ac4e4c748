// Session settings (SET / SHOW / RESET): the run-time parameters clients read and set.
// Unknown names get 42704 as in PostgreSQL; values are kept as text, and the few that
// change behaviour (timeouts, isolation, search_path) are parsed where they are used.

import { SqlError } from '../pgwire/session.js';
import { SERVER_VERSION } from './functions.js';

interface Definition {
  value: string;
  /** Read-only parameters reject SET with 55P02. */
  readOnly?: boolean;
  /** Sent to the client as ParameterStatus when it changes. */
  report?: boolean;
  normalize?: (value: string) => string;
}

const durationMs = (value: string): string => {
  const match = /^\s*(-?\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$/i.exec(value);
  if (match === null) throw new SqlError('22023', `invalid value for parameter: "${value}"`);
  const factor: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
  const ms = Math.round(Number(match[1]) * factor[(match[2] ?? 'ms').toLowerCase()]!);
  if (ms < 0) throw new SqlError('22023', `${ms} ms is outside the valid range for parameter (0 .. 2147483647)`);
  return ms === 0 ? '0' : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
};

const isolation = (value: string): string => {
  const normalized = value.toLowerCase().replace(/\s+/g, ' ').trim();
  if (!['read committed', 'repeatable read', 'serializable', 'read uncommitted'].includes(normalized)) throw new SqlError('22023', `invalid value for parameter "transaction_isolation": "${value}"`);
  return normalized === 'read uncommitted' ? 'read committed' : normalized;
};

const onOff = (value: string): string => {
  const normalized = value.toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(normalized)) return 'on';
  if (['off', 'false', 'no', '0'].includes(normalized)) return 'off';
  throw new SqlError('22023', `parameter requires a Boolean value`);
};

function defaults(): Map<string, Definition> {
  return new Map<string, Definition>([
    ['application_name', { value: '', report: true }],
    ['client_encoding', { value: 'UTF8', report: true, normalize: (value) => {
      if (!/^utf-?8$/i.test(value) && !/^unicode$/i.test(value) && !/^sql_ascii$/i.test(value)) throw new SqlError('22023', `invalid value for parameter "client_encoding": "${value}"`);
      return 'UTF8';
    } }],
    ['client_min_messages', { value: 'notice' }],
    ['datestyle', { value: 'ISO, MDY', report: true }],
    ['default_transaction_isolation', { value: 'read committed', normalize: isolation }],
    ['default_transaction_read_only', { value: 'off', normalize: onOff }],
    ['extra_float_digits', { value: '1' }],
    ['integer_datetimes', { value: 'on', readOnly: true, report: true }],
    ['intervalstyle', { value: 'postgres', report: true }],
    ['is_superuser', { value: 'on', readOnly: true, report: true }],
    ['lock_timeout', { value: '0', normalize: durationMs }],
    ['deadlock_timeout', { value: '1s', normalize: durationMs }],
    ['idle_in_transaction_session_timeout', { value: '0', normalize: durationMs }],
    ['max_connections', { value: '100', readOnly: true }],
    ['search_path', { value: '"$user", public' }],
    ['server_encoding', { value: 'UTF8', readOnly: true, report: true }],
    ['server_version', { value: SERVER_VERSION, readOnly: true, report: true }],
    ['server_version_num', { value: String(150000 + Number(SERVER_VERSION.split('.')[1] ?? 0)), readOnly: true }],
    ['standard_conforming_strings', { value: 'on', report: true }],
    ['statement_timeout', { value: '0', normalize: durationMs }],
    ['synchronous_commit', { value: 'on' }],
    ['timezone', { value: 'UTC', report: true, normalize: (value) => {
      if (!/^(utc|gmt|z|etc\/utc|\+?0+(:00)?)$/i.test(value.trim())) throw new SqlError('0A000', `time zone "${value}" is not supported yet (only UTC)`);
      return 'UTC';
    } }],
    ['transaction_isolation', { value: 'read committed', normalize: isolation }],
    ['transaction_read_only', { value: 'off', normalize: onOff }],
    ['work_mem', { value: '4MB' }],
    // Rows a sort, hash, DISTINCT or GROUP BY may hold before failing with 53200 (X1).
    ['boreal.max_rows_in_memory', { value: '2000000', normalize: (value) => {
      const text = value.trim();
      if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > 2_000_000_000) throw new SqlError('22023', `invalid value for parameter "boreal.max_rows_in_memory": "${value}"`, { hint: 'Valid values are between "1" and "2000000000".' });
      return String(Number(text));
    } }],
    ['maintenance_work_mem', { value: '64MB' }],
    ['enable_seqscan', { value: 'on', normalize: onOff }],
    ['enable_indexscan', { value: 'on', normalize: onOff }],
    ['enable_hashjoin', { value: 'on', normalize: onOff }],
    ['enable_nestloop', { value: 'on', normalize: onOff }],
    ['enable_mergejoin', { value: 'on', normalize: onOff }],
    ['row_security', { value: 'on', normalize: onOff }],
    ['lc_messages', { value: 'C' }],
    ['lc_monetary', { value: 'C' }],
    ['lc_numeric', { value: 'C' }],
    ['lc_time', { value: 'C' }],
    ['lc_collate', { value: 'C', readOnly: true }],
    ['lc_ctype', { value: 'C', readOnly: true }],
    ['bytea_output', { value: 'hex' }],
    ['xmloption', { value: 'content' }],
    ['check_function_bodies', { value: 'on', normalize: onOff }],
    ['session_replication_role', { value: 'origin' }],
    ['default_tablespace', { value: '' }],
    ['default_with_oids', { value: 'off' }],
    ['escape_string_warning', { value: 'on' }],
    ['password_encryption', { value: 'scram-sha-256' }],
    ['jit', { value: 'off' }],
    ['max_parallel_workers_per_gather', { value: '0' }],
    ['random_page_cost', { value: '4' }],
    ['effective_cache_size', { value: '4GB' }],
    ['block_size', { value: '8192', readOnly: true }],
    ['max_identifier_length', { value: '63', readOnly: true }],
    ['data_directory_mode', { value: '0700', readOnly: true }],
  ]);
}

/** Names as PostgreSQL displays them in SHOW's column header. */
const DISPLAY: Record<string, string> = { datestyle: 'DateStyle', intervalstyle: 'IntervalStyle', timezone: 'TimeZone' };

export class Settings {
  private readonly values = defaults();
  /** SET LOCAL values and SET inside a transaction: restored at its end. */
  private undo: Array<{ name: string; value: string; local: boolean }> = [];

  constructor(overrides: Record<string, string> = {}) {
    for (const [name, value] of Object.entries(overrides)) {
      const definition = this.values.get(name.toLowerCase());
      // Normalized as SET would (a bad value throws 22023: callers validate defaults up front).
      if (definition !== undefined) definition.value = definition.normalize !== undefined ? definition.normalize(value) : value;
    }
  }

  private definition(name: string): Definition {
    // Names from the code are lower case already: no new string for them.
    const definition = this.values.get(name) ?? this.values.get(name.toLowerCase());
    if (definition === undefined) {
      // Custom (dotted) parameters are allowed, as PostgreSQL's placeholder variables.
      if (name.includes('.')) {
        const created: Definition = { value: '' };
        this.values.set(name.toLowerCase(), created);
        return created;
      }
      throw new SqlError('42704', `unrecognized configuration parameter "${name}"`);
    }
    return definition;
  }

  get(name: string): string {
    const known = this.values.get(name);
    if (known !== undefined) return known.value;
    if (name.toLowerCase() === 'all') throw new SqlError('0A000', 'SHOW ALL is not supported yet');
    return this.definition(name).value;
  }

  displayName(name: string): string {
    return DISPLAY[name.toLowerCase()] ?? name.toLowerCase();
  }

  /** SET; returns the value to report to the client (ParameterStatus) if the parameter is reported. */
  set(name: string, value: string, options: { local: boolean; inTransaction: boolean }): { name: string; value: string } | undefined {
    const definition = this.definition(name);
    if (definition.readOnly) throw new SqlError('55P02', `parameter "${name.toLowerCase()}" cannot be changed`);
    const normalized = definition.normalize !== undefined ? definition.normalize(value) : value;
    if (options.inTransaction) this.undo.push({ name: name.toLowerCase(), value: definition.value, local: options.local });
    definition.value = normalized;
    return definition.report ? { name: this.displayName(name), value: normalized } : undefined;
  }

  reset(name: string, options: { inTransaction: boolean }): { name: string; value: string } | undefined {
    const fresh = defaults().get(name.toLowerCase());
    if (fresh === undefined) throw new SqlError('42704', `unrecognized configuration parameter "${name}"`);
    return this.set(name, fresh.value, { local: false, inTransaction: options.inTransaction });
  }

  /** At transaction end: SET LOCAL always reverts; plain SET reverts only on rollback. */
  endTransaction(committed: boolean): void {
    for (const entry of this.undo.reverse()) {
      if (entry.local || !committed) this.values.get(entry.name)!.value = entry.value;
    }
    this.undo = [];
  }

  milliseconds(name: string): number {
    const value = this.get(name);
    if (value === '0') return 0;
    let ms = MILLISECONDS.get(value);
    if (ms === undefined) {
      const match = /^(\d+)(ms|s)$/.exec(value)!;
      ms = Number(match[1]) * (match[2] === 's' ? 1000 : 1);
      if (MILLISECONDS.size < 1024) MILLISECONDS.set(value, ms);
    }
    return ms;
  }
}

/** Parsed durations by their text (settings are read on every statement). */
const MILLISECONDS = new Map<string, number>();
