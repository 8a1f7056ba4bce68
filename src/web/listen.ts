// Starts and stops our HTTP servers alike: the same timeouts, listening confirmed, open connections cut at stop.
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

/** Stops listening and ends open connections (keep-alive ones too), resolving once the server has closed. */
export async function closeNow(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
