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

export interface SqlDatabase {
  prepare(sql: string): SqlStatement;
  exec(sql: string): void;
  /** Wraps `fn` in BEGIN/COMMIT; a throw rolls back. */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  pragma(source: string): unknown;
  close(): void;
  readonly open: boolean;
}

type DatabaseConstructor = new (path: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }) => SqlDatabase;

const require = createRequire(import.meta.url);
let ctor: DatabaseConstructor | undefined;

/** Opens (creating when missing) the SQLite file at `path`. */
export function openDatabase(path: string): SqlDatabase {
  ctor ??= require('better-sqlite3') as DatabaseConstructor;
  // A second process (serve beside import) may hold the write lock for a moment: wait rather than fail.
  return new ctor(path, { timeout: 5000 });
}
