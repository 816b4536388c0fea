/**
 * A stand-in for systemd's notification socket: a real AF_UNIX SOCK_DGRAM socket bound by a
 * python3 child (Node cannot bind one), which prints every datagram it receives as one JSON
 * line, with the sender pid from SCM_CREDENTIALS. systemd-notify's `BARRIER=1` handshakes are
 * left out of `messages()`: the passed fd is closed on receipt, which releases the sender.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './localpost.js';
import { PYTHON } from './python.js';

const RECEIVER = `
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({'bound': True}), flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64))
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', data[:12])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for i in range(len(data) // 4):
                os.close(struct.unpack('i', data[i * 4:i * 4 + 4])[0])
    print(json.dumps({'text': msg.decode('utf-8', 'replace'), 'pid': pid}), flush=True)
`;

/** One received notification. */
export interface Notification {
  text: string;
  pid: number | null;
}

/** A bound receiver: its path (the NOTIFY_SOCKET value), what arrived, and close(). */
export interface NotifyReceiver {
  path: string;
  /** Messages in arrival order, BARRIER=1 handshakes left out. */
  messages(): Notification[];
  /** Waits until a message containing the line `line` (e.g. `READY=1`) has arrived. */
  waitForLine(line: string, ms?: number): Promise<Notification>;
  close(): Promise<void>;
}

/** Starts a receiver on a fresh socket path. */
export async function startNotifyReceiver(): Promise<NotifyReceiver> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-notify-'));
  const sock = path.join(dir, 'notify.sock');
  const child: ChildProcess = spawn(PYTHON, ['-c', RECEIVER, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
  const received: Notification[] = [];
  let bound = false;
  let buf = '';
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const rec = JSON.parse(buf.slice(0, nl)) as { bound?: boolean } & Notification;
      buf = buf.slice(nl + 1);
      if (rec.bound) bound = true;
      else if (rec.text !== 'BARRIER=1') received.push({ text: rec.text, pid: rec.pid });
    }
  });
  await waitFor(() => bound || child.exitCode !== null, 10_000, 'the notify socket to be bound');
  if (!bound) throw new Error(`notify receiver failed: ${stderr}`);
  const find = (line: string) => received.find((m) => m.text.split('\n').includes(line));
  return {
    path: sock,
    messages: () => [...received],
    waitForLine: async (line, ms = 10_000) => {
      await waitFor(
        () => find(line) !== undefined,
        ms,
        `a notification with ${line} (got ${JSON.stringify(received)})`,
      );
      return find(line)!;
    },
    close: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('close', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
