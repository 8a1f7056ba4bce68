// Headless Debian Chromium driven by playwright-core, with a fresh empty profile and no background network traffic.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';

export const chromiumPath = '/usr/bin/chromium';

export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  context: BrowserContext;
  /** A new tab that records every request it makes. */
  newPage(): Promise<{ page: Page; requests: Request[] }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  // A fresh profile per launch: no cache, cookies or service workers from an earlier test.
  const userDataDir = mkdtempSync(join(tmpdir(), 'embargo-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
    acceptDownloads: true,
    javaScriptEnabled: true,
    viewport: { width: 390, height: 844 },
  });
  return {
    context,
    async newPage() {
      const page = await context.newPage();
      const requests: Request[] = [];
      page.on('request', (request) => void requests.push(request));
      return { page, requests };
    },
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
