/** The resolve hook of module-trace.mjs (runs on Node's loader thread). */
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const file = process.env.LOCALPOST_MODULE_TRACE;
  if (file) appendFileSync(file, `${resolved.url}\n`);
  return resolved;
}
