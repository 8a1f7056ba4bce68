// Exit codes of the embargo command, documented in README.md.
export const exitCodes = {
  ok: 0,
  /** The config is invalid (check, serve), or a command failed. */
  invalidConfig: 1,
  failure: 1,
  /** Wrong usage: unknown command or option, missing argument. */
  usage: 2,
} as const;
