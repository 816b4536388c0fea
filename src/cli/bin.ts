/** Process entry point: `bin/localpost` runs the compiled copy of this file. */
import { main } from './main.js';

await main();
