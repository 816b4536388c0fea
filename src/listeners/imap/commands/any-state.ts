/**
 * Commands valid in every state (RFC 3501 §6.1) and the session-level extensions: CAPABILITY,
 * NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161; CONDSTORE and QRESYNC, RFC 7162), NAMESPACE (RFC 2342), IDLE (RFC 2177).
 */

import { parseEnable, parseId, parseNoArgs } from '../command-args.js';
import type { Command } from '../command-reader.js';
import { string, toBuffer } from '../response.js';
import { type HandlerResult, ok, parsed, type Reply, type SessionContext } from '../types.js';

export async function capability(s: SessionContext, cmd: Command): Promise<Reply> {
  parsed(parseNoArgs(cmd.args));
  await s.send(`* CAPABILITY ${s.capabilities()}`);
  return ok('CAPABILITY completed');
}

/** NOOP and CHECK: the dispatcher sends the pending updates. */
export function noop(_s: SessionContext, cmd: Command): Reply {
  parsed(parseNoArgs(cmd.args));
  return ok(`${cmd.name} completed`);
}

export async function logout(s: SessionContext, cmd: Command): Promise<Reply> {
  parsed(parseNoArgs(cmd.args));
  await s.send('* BYE logging out');
  s.logout();
  return ok('LOGOUT completed');
}

export async function id(s: SessionContext, cmd: Command): Promise<Reply> {
  parsed(parseId(cmd.args));
  await s.write(toBuffer(['* ID ("name" ', string(s.implementation), ')\r\n']));
  return ok('ID completed');
}

export async function enable(s: SessionContext, cmd: Command): Promise<Reply> {
  const caps = parsed(parseEnable(cmd.args));
  const enabled: string[] = [];
  // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3); each is listed when this command enabled it.
  if (caps.includes('QRESYNC') && !s.qresync) {
    s.qresync = true;
    enabled.push('QRESYNC');
  }
  if (caps.includes('CONDSTORE') && !s.condstore) enabled.push('CONDSTORE');
  if (enabled.length) s.condstore = true;
  await s.send(`* ENABLED${enabled.map((c) => ` ${c}`).join('')}`);
  return ok('ENABLE completed');
}

export async function namespace(s: SessionContext, cmd: Command): Promise<Reply> {
  parsed(parseNoArgs(cmd.args));
  await s.send('* NAMESPACE (("" "/")) NIL NIL');
  return ok('NAMESPACE completed');
}

/** IDLE: `+`, then updates as they happen until the client's DONE (RFC 2177 §3). */
export async function idle(s: SessionContext, cmd: Command): Promise<HandlerResult> {
  parsed(parseNoArgs(cmd.args));
  await s.send('+ idling');
  s.setIdle(cmd.tag);
  s.continueWith(async (line) => {
    s.setIdle(undefined);
    const done = line.toString('latin1').trim().toUpperCase() === 'DONE';
    await s.finish(cmd.tag, done ? ok('IDLE terminated') : { status: 'BAD', text: 'expected DONE' });
    return 'deferred';
  });
  return 'deferred';
}
