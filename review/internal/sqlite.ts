/**
 * better-sqlite3 behind a small typed interface. The package ships no TypeScript types (and @types is not
 * installed), so it is loaded through `createRequire` and described here by the few methods camstream uses.
 */
import { createRequire } from 'node:module';

export interface SqlStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** A function run as one transaction: a plain call begins DEFERRED, `immediate` takes the write lock first. */
export interface SqlTransaction<A extends unknown[], R> {
  (...args: A): R;
  immediate(...args: A): R;
}

export interface SqlDatabase {
  prepare(sql: string): SqlStatement;
  exec(sql: string): void;
  /** Wraps `fn` in BEGIN/COMMIT (a savepoint when nested); a throw rolls back. */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): SqlTransaction<A, R>;
  pragma(source: string): unknown;
  close(): void;
  readonly open: boolean;
}

type DatabaseConstructor = new (path: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }) => SqlDatabase;

const require = createRequire(import.meta.url);
let ctor: DatabaseConstructor | undefined;

/** How long a statement waits for another connection's write lock before failing with SQLITE_BUSY, in ms. */
export const BUSY_TIMEOUT_MS = 5000;

/** Opens (creating when missing) the SQLite file at `path`. */
export function openDatabase(path: string): SqlDatabase {
  ctor ??= require('better-sqlite3') as DatabaseConstructor;
  // A second process (serve beside import, another import) may hold the write lock: wait rather than fail.
  return new ctor(path, { timeout: BUSY_TIMEOUT_MS });
}

/** True for SQLite's "another connection holds the lock" errors (SQLITE_BUSY and its extended codes). */
export function isBusyError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * Runs `fn` as one write transaction that takes the write lock before its first read (BEGIN IMMEDIATE),
 * waiting up to `BUSY_TIMEOUT_MS` for it. A DEFERRED transaction that reads first and then writes cannot
 * wait in WAL mode: when another connection writes meanwhile, SQLite fails it at once (SQLITE_BUSY_SNAPSHOT,
 * "database is locked"). Nested in another transaction, it is a savepoint of that one.
 */
export function writeTransaction<R>(db: SqlDatabase, fn: () => R): R {
  return db.transaction(fn).immediate();
}
