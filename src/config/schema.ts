/**
 * The one configuration schema: types, defaults, validation and the text of every key's
 * documentation live in it and nowhere else. `load.ts` parses YAML into it, `example.ts` renders
 * `config/localpost.example.yaml` from its descriptions and defaults, and `reference.ts` renders
 * `docs/configuration.md` from the same `.describe()` texts. This module assembles the whole file from its
 * parts (schema-fields.ts, schema-listen.ts, schema-secret.ts, schema-account.ts) and is what
 * the rest of localpost imports.
 *
 * Invariants:
 * - every object is strict, so a misspelt key is an error rather than a silently ignored line;
 * - parsing yields the fully defaulted form: durations are milliseconds, sizes are bytes
 *   (1 KB = 1024 bytes), paths have `~` and `$VARS` expanded, ports are filled in from
 *   protocol and TLS mode, and `login.username` defaults to the account id;
 * - secrets stay unresolved (`Secret`); `secrets.ts` resolves them when they are needed;
 * - cross-field checks run even when other fields are invalid, so one run reports every error.
 * The key names and defaults are a user contract (configs in use depend on them): add keys,
 * never rename them.
 */
import { z } from 'zod';
import { accounts } from './schema-account.js';
import { defaultDataDir, duration, path } from './schema-fields.js';
import { listen } from './schema-listen.js';

export { defaultPort, expandPath, type FieldMeta, parseDuration, parseSize } from './schema-fields.js';
export { accountOAuth2, type OAuth2Settings, oauth2Of, type PlainSecret, type Secret } from './schema-secret.js';

/** The schema of `config.yaml`: parse with `configSchema.safeParse(yamlValue)`. */
export const configSchema = z
  .strictObject({
    dataDir: path
      .prefault(() => defaultDataDir())
      .meta({ example: '~/.local/share/localpost' })
      .describe('Where all cached mail and state live. Default: $XDG_DATA_HOME/localpost or ~/.local/share/localpost.'),
    log: z
      .strictObject({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error'])
          .default('info')
          .describe('trace | debug | info | warn | error. Protocol transcripts (credentials masked) appear at trace.'),
      })
      .prefault({})
      .describe('Logging: JSON lines on stdout.'),
    listen,
    outbox: z
      .strictObject({
        maxAge: duration
          .prefault('5d')
          .describe("Give up on a message after this long and put a bounce in the sender's local inbox."),
        retry: z
          .strictObject({
            initial: duration.prefault('1m').describe('First retry delay.'),
            max: duration.prefault('1h').describe('Longest retry delay.'),
          })
          .superRefine((r, ctx) => {
            if (typeof r.initial === 'number' && typeof r.max === 'number' && r.initial > r.max) {
              ctx.addIssue({ code: 'custom', path: ['initial'], message: 'must not be longer than retry.max' });
            }
          })
          .prefault({})
          .describe('Exponential backoff with jitter between these delays.'),
      })
      .prefault({})
      .describe('Outgoing mail waiting for its upstream server.'),
    connectivity: z
      .strictObject({
        probeInterval: duration
          .prefault('30s')
          .describe(
            'How often each upstream server is checked with a TCP connect; when one comes back, the outbox is flushed and every account pulled.',
          ),
        probeTimeout: duration.prefault('5s').describe('How long a check waits for the connection.'),
      })
      .prefault({})
      .describe('Knowing when the upstream servers are reachable.'),
    accounts,
  })
  .describe('localpost configuration.');

/** The validated, fully defaulted configuration. */
export type Config = z.output<typeof configSchema>;
/** One entry of `accounts`. */
export type AccountConfig = Config['accounts'][number];
