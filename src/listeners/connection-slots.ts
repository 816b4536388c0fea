/**
 * The connection slots of one local listener: the policy POP3 and SMTP share against a flood
 * of idle connections (docs/troubleshooting.md#connection-limits).
 *
 * - At most `max` connections at once, and at most `maxPerAddress` from one client address other
 *   than loopback (a LAN host with `allowRemote`). Loopback is exempt: every local client, the
 *   user's own mail client with one connection per account among them, shares it (any local user
 *   may connect from any 127.x address), so a cap there would only lower `max` for everyone and
 *   could not tell one local user from another; the two rules below can.
 * - A full listener (or address) makes room by closing its oldest idle connection that has not
 *   logged in, rather than refusing the newcomer: a flood of idle connections cannot lock the
 *   real client out, it only pushes its own connections out. Only when every connection in the
 *   way has logged in (or is running a command) is the newcomer refused.
 * - Each connection must log in within `loginTimeoutMs` of connecting, or within the much
 *   shorter `busyLoginTimeoutMs` when it arrives while more than half the slots are taken.
 *
 * Invariants: a slot is counted from `admit()` until `release()` (idempotent), and an evicted
 * slot is released before its occupant is told, so the count never exceeds `max`; the login
 * timer is the only timer and is cleared by `loggedIn()` and `release()`.
 */
import { isLoopbackHost } from '../shared/loopback.js';

/** What the slots need from a connection. */
export interface SlotOccupant {
  /** True while closing it loses nothing: not logged in, no command running. */
  readonly idle: boolean;
  /** Close it with the protocol's temporary error, to make room for a newer connection. */
  evict(): void;
  /** The login deadline passed before `loggedIn()`. */
  loginExpired(): void;
}

/** The limits of a listener. */
export interface SlotPolicy {
  max: number;
  maxPerAddress: number;
  loginTimeoutMs: number;
  /** The login deadline of a connection arriving while more than half the slots are taken. */
  busyLoginTimeoutMs: number;
}

/** Defaults: the config's `maxConnections` and `maxConnectionsPerAddress`, a minute to log in, 10 s when busy. */
export const DEFAULT_SLOT_POLICY: SlotPolicy = {
  max: 50,
  maxPerAddress: 10,
  loginTimeoutMs: 60_000,
  busyLoginTimeoutMs: 10_000,
};

/** Why a connection was refused: the listener is full, or its address has its share. */
export type Refusal = 'full' | 'address';

/** The key a client address is counted under: one for all of loopback. */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  if (isLoopbackHost(address)) return 'loopback';
  return address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1').toLowerCase();
}

/** One admitted connection. */
export class Slot {
  private occupant?: SlotOccupant;
  private timer?: NodeJS.Timeout;
  private authenticated = false;
  released = false;

  constructor(
    readonly key: string,
    /** The login deadline this connection got (shorter when the listener was busy). */
    readonly loginTimeoutMs: number,
    private readonly onRelease: (slot: Slot) => void,
  ) {}

  /** Evictable: bound, not logged in, and idle. */
  get evictable(): boolean {
    return !this.authenticated && this.occupant?.idle === true;
  }

  /** Attach the connection and start its login deadline. */
  bind(occupant: SlotOccupant): void {
    this.occupant = occupant;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.authenticated && !this.released) occupant.loginExpired();
    }, this.loginTimeoutMs);
    this.timer.unref();
  }

  /** The connection logged in: it is never evicted, and its login deadline is over. */
  loggedIn(): void {
    this.authenticated = true;
    clearTimeout(this.timer);
  }

  /** The connection is gone (or going): free the slot. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    this.onRelease(this);
  }

  /** Free the slot, then close the connection. */
  evict(): void {
    this.release();
    this.occupant?.evict();
  }
}

/** The slots of one listener (see the module comment). */
export class ConnectionSlots {
  /** In order of admission: the first evictable one is the oldest. */
  private readonly slots = new Set<Slot>();
  /** Connections closed to make room, and refused, since the start. */
  evicted = 0;
  refused = 0;
  readonly policy: SlotPolicy;

  /** `policy`: what the listener's options set; a key left undefined keeps its default. */
  constructor(policy: { [K in keyof SlotPolicy]?: number | undefined } = {}) {
    const p = { ...DEFAULT_SLOT_POLICY };
    for (const k of Object.keys(p) as Array<keyof SlotPolicy>) p[k] = policy[k] ?? p[k];
    this.policy = { ...p, maxPerAddress: Math.min(p.maxPerAddress, p.max) };
  }

  /** Connections holding a slot. */
  get size(): number {
    return this.slots.size;
  }

  /** Admit a connection from `address`, closing an idle one if needed, or say why not. */
  admit(address: string | undefined): Slot | Refusal {
    const key = addressKey(address);
    const { max, maxPerAddress, loginTimeoutMs, busyLoginTimeoutMs } = this.policy;
    const mine = key === 'loopback' ? [] : [...this.slots].filter((s) => s.key === key);
    if (mine.length >= maxPerAddress && !this.evictOldest(mine)) return this.refuse('address');
    if (this.slots.size >= max && !this.evictOldest(this.slots)) return this.refuse('full');
    const busy = this.slots.size + 1 > max / 2;
    const slot = new Slot(key, busy ? Math.min(busyLoginTimeoutMs, loginTimeoutMs) : loginTimeoutMs, (s) =>
      this.slots.delete(s),
    );
    this.slots.add(slot);
    return slot;
  }

  private refuse(why: Refusal): Refusal {
    this.refused++;
    return why;
  }

  private evictOldest(among: Iterable<Slot>): boolean {
    for (const s of among) {
      if (!s.evictable) continue;
      this.evicted++;
      s.evict();
      return true;
    }
    return false;
  }
}
