/**
 * A private Dovecot from the testbed and a local IMAP server on a real cache, started before the
 * tests of a file and stopped after them: for tests that compare our answers with Dovecot's.
 */
import { after, before } from 'node:test';
import { type ImapFixture, startImap } from './imap-server.js';
import { startTestbed, type Testbed } from './testbed.js';

export interface DovecotPair {
  /** Dovecot's IMAP port (user alice, password alicepw). */
  readonly theirs: number;
  /** Our IMAP port (user alice, password localpw). */
  readonly ours: number;
}

/** Registers the hooks; the ports are readable once the tests run. */
export function dovecotAndLocal(): DovecotPair {
  let tb: Testbed | undefined;
  let fx: ImapFixture | undefined;
  before(async () => {
    tb = await startTestbed({ postfix: false });
    fx = await startImap({ realCache: true });
  });
  after(async () => {
    await fx?.close();
    await tb?.stop();
  });
  return {
    get theirs(): number {
      if (!tb) throw new Error('testbed not started');
      return tb.imapPort;
    },
    get ours(): number {
      if (!fx) throw new Error('local server not started');
      return fx.port;
    },
  };
}
