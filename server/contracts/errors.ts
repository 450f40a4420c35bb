// One error type for the whole project. Every failure that reaches a user (CLI line, HTTP body,
// WebSocket `error` frame) carries a stable `code` of the form E_…; only api/ and cli/ map codes
// to HTTP statuses, close codes or exit codes.

export type ErrorCode = `E_${string}`;

export class AppError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: C, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options?.details;
  }

  toJSON(): { code: C; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

export function isAppError<C extends ErrorCode>(err: unknown, ...codes: C[]): err is AppError<C> {
  if (!(err instanceof AppError)) return false;
  return codes.length === 0 || (codes as string[]).includes(err.code);
}

/** Wraps anything thrown into an AppError, keeping a coded one as it is. */
export function toAppError(err: unknown, fallback: ErrorCode = 'E_INTERNAL'): AppError {
  if (err instanceof AppError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AppError(fallback, message, { cause: err });
}
