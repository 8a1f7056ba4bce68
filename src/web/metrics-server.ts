// The metrics listener: /metrics in the Prometheus text format on its own (loopback) address, apart from the public web listener.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Component, DaemonContext } from '../component.ts';
import { metrics } from '../util/metrics.ts';
import { closeNow, listenWithTimeouts } from './listen.ts';

/**
 * Counts per list and the number of pending embargoes tell when advisories are posted; so they are served only
 * here (metrics.host:metrics.port, loopback by default) for the monitoring system, never on the public web port.
 */
export function createMetricsComponent(context: DaemonContext): Component {
  let server: Server | null = null;
  return {
    name: 'metrics',
    async start() {
      const { enabled, host, port } = context.config().server.metrics;
      if (!enabled) return;
      const created = createServer((request, response) => {
        const path = new URL(request.url ?? '/', 'http://metrics.invalid').pathname;
        if ((request.method !== 'GET' && request.method !== 'HEAD') || path !== '/metrics') {
          response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
          response.end('not found\n');
          return;
        }
        const body = Buffer.from(metrics.render(), 'utf8');
        response.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': String(body.length), 'Cache-Control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : body);
      });
      await listenWithTimeouts(created, port, host);
      server = created;
      context.reportListening('metrics', (created.address() as AddressInfo).port);
    },
    async stop() {
      const current = server;
      server = null;
      if (!current) return;
      await closeNow(current);
    },
  };
}

