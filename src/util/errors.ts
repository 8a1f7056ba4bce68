// Turns anything thrown into the one-line summary that logs and replies carry: the message, never the stack or the error's other fields.

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
