// Starts an HTTP server with the timeouts both of ours use, resolving once it listens (rejecting if the port is taken).
import type { Server } from 'node:http';

export async function listenWithTimeouts(server: Server, port: number, host: string): Promise<void> {
  // A client that dribbles headers or a body must not hold a socket for ever (slowloris).
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
