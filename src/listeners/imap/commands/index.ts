/**
 * The IMAP command table: one entry per command name with the states it is valid in (checked
 * once by the session's dispatcher), whether it takes the UID prefix, and its handler.
 */
import type { CommandSpec, ImapState } from '../types.js';
import { capability, enable, id, idle, logout, namespace, noop } from './any-state.js';
import { authenticate, login, starttls } from './auth.js';
import { fetch } from './fetch.js';
import { create, del, rename, select, subscribe } from './folders.js';
import { list, status } from './list.js';
import { append, close, copy, expunge, store } from './messages.js';
import { search } from './search.js';

const ANY: readonly ImapState[] = ['NOT_AUTHENTICATED', 'AUTHENTICATED', 'SELECTED'];
const PRE: readonly ImapState[] = ['NOT_AUTHENTICATED'];
const AUTH: readonly ImapState[] = ['AUTHENTICATED', 'SELECTED'];
const SEL: readonly ImapState[] = ['SELECTED'];

const TABLE: Record<string, CommandSpec> = {
  CAPABILITY: { states: ANY, handle: capability },
  NOOP: { states: ANY, handle: noop },
  LOGOUT: { states: ANY, handle: logout },
  ID: { states: ANY, handle: id },
  STARTTLS: { states: PRE, handle: starttls },
  LOGIN: { states: PRE, handle: login, sensitive: true },
  AUTHENTICATE: { states: PRE, handle: authenticate, sensitive: true },
  ENABLE: { states: AUTH, handle: enable },
  NAMESPACE: { states: AUTH, handle: namespace },
  IDLE: { states: AUTH, handle: idle },
  SELECT: { states: AUTH, handle: select },
  EXAMINE: { states: AUTH, handle: select },
  CREATE: { states: AUTH, handle: create },
  DELETE: { states: AUTH, handle: del },
  RENAME: { states: AUTH, handle: rename },
  SUBSCRIBE: { states: AUTH, handle: subscribe },
  UNSUBSCRIBE: { states: AUTH, handle: subscribe },
  LIST: { states: AUTH, handle: list },
  LSUB: { states: AUTH, handle: list },
  STATUS: { states: AUTH, handle: status },
  APPEND: { states: AUTH, handle: append },
  CHECK: { states: SEL, handle: noop },
  CLOSE: { states: SEL, handle: close },
  UNSELECT: { states: SEL, handle: close },
  EXPUNGE: { states: SEL, uid: true, handle: expunge },
  SEARCH: { states: SEL, uid: true, holdExpunges: true, handle: search },
  FETCH: { states: SEL, uid: true, holdExpunges: true, handle: fetch },
  STORE: { states: SEL, uid: true, holdExpunges: true, handle: store },
  COPY: { states: SEL, uid: true, handle: copy },
  MOVE: { states: SEL, uid: true, handle: copy },
};

/** The entry of a command name (upper case), or undefined. */
export function lookupCommand(name: string): CommandSpec | undefined {
  return Object.hasOwn(TABLE, name) ? TABLE[name] : undefined;
}
