/**
 * The IMAP error boundary: what a handler's exception becomes on the wire. Syntax errors are
 * BAD, refusals NO with their RFC 5530 code; anything else is logged with its stack and
 * answered `NO [SERVERBUG]` without detail.
 */
import type { Logger } from 'pino';
import { FolderOperationError, NoSuchFolderError } from '../../cache/mailboxes.js';
import { ClientError, errorMessage } from '../../shared/errors.js';
import { BadCommand, NoReply, type Reply } from './types.js';

export function dispatchError(err: unknown, log: Logger): Reply {
  if (err instanceof BadCommand) return { status: 'BAD', text: err.message };
  if (err instanceof NoReply)
    return err.code ? { status: 'NO', code: err.code, text: err.message } : { status: 'NO', text: err.message };
  if (err instanceof NoSuchFolderError) return { status: 'NO', code: 'NONEXISTENT', text: 'no such mailbox' };
  if (err instanceof FolderOperationError) return { status: 'NO', code: err.code, text: err.message };
  if (err instanceof ClientError) {
    log.info({ err: errorMessage(err) }, 'client error');
    return { status: 'NO', text: err.message };
  }
  log.error({ err }, 'command failed');
  return { status: 'NO', code: 'SERVERBUG', text: 'internal error, try again later' };
}
