// Root-only tests (mounting file systems, starting a real postfix) run as root, as .ci/run does; elsewhere they skip and say why.

/** True (skip) when the suite does not run as root, after printing what is skipped and why; for it.skipIf / describe.skipIf. */
export function skipWithoutRoot(what: string): boolean {
  if (process.getuid?.() === 0) return false;
  console.warn(`skipped: ${what} needs root (run the suite as root, as .ci/run does)`);
  return true;
}
