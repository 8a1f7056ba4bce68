// Turns anything thrown into the one-line summary that logs and replies carry: the message, never the stack or the error's other fields.

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * An exception's name and first stack frames, without its message: for errors raised while reading a message, whose
 * text may quote the message (a subject, an address), so what is logged and stored about them never does.
 */
export function errorSummary(error: unknown): { name: string; stack: string } {
  if (!(error instanceof Error)) return { name: typeof error, stack: '' };
  const frames = (error.stack ?? '').split('\n').filter((line) => line.trim().startsWith('at ')).slice(0, 8);
  return { name: error.name, stack: frames.join('\n') };
}
