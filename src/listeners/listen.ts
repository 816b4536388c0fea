/**
 * Binding helper shared by the local listeners (POP3, SMTP): listen on one address and learn
 * the port actually bound (port 0 picks a free one). `exclusive` so that each listener owns
 * its socket even under a cluster.
 */
import type net from 'node:net';

/** Listen on host:port; resolves with the bound port, rejects with the bind error. */
export function listenOn(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
