/**
 * Whether a host or client address is this machine's loopback: one definition for the config
 * (a listener host that needs `allowRemote`), the listeners (a client address, plaintext AUTH)
 * and `localpost check` (an upstream reached in clear).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** True for `localhost`, 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses. */
export function isLoopbackHost(h: string): boolean {
  const host = h.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host === 'localhost') return true;
  if (isIPv4(host)) return loopback.check(host, 'ipv4');
  if (isIPv6(host)) return loopback.check(host, 'ipv6');
  return false;
}
