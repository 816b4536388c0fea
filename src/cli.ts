/** Process entry point: `bin/localpost` runs the compiled copy of this file. */
import { main } from './daemon/main.js';

await main();
