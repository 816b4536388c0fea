/**
 * The folders an IMAP account pulls and shows (src/upstream/imap/folder-set.ts) and the LIST
 * pattern matcher it shares with the local IMAP server (src/shared/list-pattern.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasWildcard, listMatcher } from '../../src/shared/list-pattern.js';
import { folderSet, type UpstreamFolder } from '../../src/upstream/imap/folder-set.js';

describe('listMatcher', () => {
  const m = (pattern: string, name: string) => listMatcher(pattern)(name);
  it('`*` matches any depth, `%` one level', () => {
    assert.ok(m('*', 'INBOX'));
    assert.ok(m('*', 'a/b/c'));
    assert.ok(m('%', 'Archive'));
    assert.ok(!m('%', 'Archive/2026'));
    assert.ok(m('Archive/*', 'Archive/2026/q1'));
    assert.ok(!m('Archive/*', 'Archive'));
    assert.ok(m('Archive*', 'Archive'));
    assert.ok(m('Archive/%', 'Archive/2026'));
    assert.ok(!m('Archive/%', 'Archive/2026/q1'));
    assert.ok(m('%/%', 'Lists/node'));
    assert.ok(m('Li*de', 'Lists/node'));
    assert.ok(!m('Li%de', 'Lists/node'));
  });
  it('INBOX is case-insensitive, other names are not', () => {
    assert.ok(m('inbox', 'INBOX'));
    assert.ok(m('InBox/%', 'INBOX/x'));
    assert.ok(!m('archive', 'Archive'));
  });
  it('another delimiter', () => {
    assert.ok(listMatcher('a.%', '.')('a.b'));
    assert.ok(!listMatcher('a.%', '.')('a.b.c'));
  });
  it('a pathological pattern stays linear (no backtracking)', () => {
    const name = `${'a'.repeat(5000)}c`;
    assert.ok(!m(`${'*a'.repeat(200)}b`, name));
  });
  it('hasWildcard', () => {
    assert.ok(hasWildcard('a*'));
    assert.ok(hasWildcard('%'));
    assert.ok(!hasWildcard('Sent Items'));
  });
});

describe('folderSet', () => {
  const up: UpstreamFolder[] = [
    { name: 'INBOX', path: 'INBOX' },
    { name: 'Sent Items', path: 'Sent Items', specialUse: '\\Sent' },
    { name: 'Drafts', path: 'Drafts', specialUse: '\\Drafts' },
    { name: 'Deleted', path: 'Deleted', specialUse: '\\Trash' },
    { name: 'Spam', path: 'Spam', specialUse: '\\Junk' },
    { name: 'Archive', path: 'Archive', specialUse: '\\Archive' },
    { name: 'Archive/2026', path: 'Archive.2026' },
    { name: '[Gmail]/All Mail', path: '[Gmail].All Mail', specialUse: '\\All' },
    { name: 'Work', path: 'Work' },
  ];
  const names = (patterns: string[], localFolders: string[] = []) =>
    folderSet(up, patterns, { localFolders }).pull.map((f) => f.name);

  it('the default [INBOX]: INBOX and the special-use Sent, Drafts, Trash, Junk', () => {
    assert.deepEqual(names(['INBOX']), ['INBOX', 'Deleted', 'Drafts', 'Sent Items', 'Spam']);
    assert.deepEqual(names(['inbox']), names(['INBOX']));
  });
  it('patterns; `*` leaves out the virtual \\All (only an exact name brings it)', () => {
    assert.deepEqual(names(['*']), [
      'INBOX',
      'Archive',
      'Archive/2026',
      'Deleted',
      'Drafts',
      'Sent Items',
      'Spam',
      'Work',
    ]);
    assert.ok(names(['Archive/%']).includes('Archive/2026'));
    assert.ok(!names(['Archive/%']).includes('Archive'));
    assert.ok(!names(['Archive/%']).includes('INBOX'), 'INBOX only when matched');
    assert.ok(names(['[Gmail]/All Mail']).includes('[Gmail]/All Mail'));
  });
  it("exact names: the cache's name or the upstream's own path", () => {
    assert.ok(names(['Archive.2026']).includes('Archive/2026'));
    assert.ok(names(['Archive/2026']).includes('Archive/2026'));
  });
  it('folders created locally are always in the set', () => {
    assert.ok(names(['INBOX'], ['Work']).includes('Work'));
  });
  it('without the local IMAP server only `folders` is pulled', () => {
    assert.deepEqual(
      folderSet(up, ['INBOX', 'Arch%'], undefined).pull.map((f) => f.name),
      ['INBOX', 'Archive'],
    );
  });
  it('exact names the upstream lacks are missing; patterns never are', () => {
    const s = folderSet(up, ['INBOX', 'Nope', 'Work', 'Gone/*'], { localFolders: [] });
    assert.deepEqual(s.missing, ['Nope']);
    assert.ok(s.pull.some((f) => f.name === 'Work'));
  });
});
