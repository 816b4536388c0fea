/**
 * `node --import ./module-trace.mjs`: appends every module URL the process resolves (ESM, and the
 * CommonJS packages it imports) to the file named by $LOCALPOST_MODULE_TRACE, one per line, so a
 * test can tell which packages a command loads (tests/integration/cli-startup.test.ts).
 */
import { register } from 'node:module';

register('./module-trace-hooks.mjs', import.meta.url);
