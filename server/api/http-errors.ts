// The one place error codes become HTTP statuses. Every REST failure answers
// `{error: {code, message}}`; WebSocket failures carry the same code in an `error` frame. Codes not
// listed here are server faults (500) unless their prefix says otherwise.
import type { Request, Response, NextFunction } from 'express';
import { AppError, toAppError } from '../contracts/errors.ts';

const STATUS_BY_CODE: Record<string, number> = {
  E_AUTH_TOKEN: 401,
  E_TOKEN_REQUIRED: 401,
  E_PATH_OUTSIDE_ROOTS: 403,
  E_PATH_NOT_FOUND: 404,
  E_SLIDE_NOT_FOUND: 404,
  E_MODEL_NOT_FOUND: 404,
  E_JOB_NOT_FOUND: 404,
  E_NOT_FOUND: 404,
  E_MODEL_EXISTS: 409,
  E_JOB_FINISHED: 409,
  E_CORRECTION_CONFLICT: 409,
  E_NO_ROLLBACK: 409,
  E_SLIDE_NOT_READY: 409,
  E_PAYLOAD_TOO_LARGE: 413,
  E_QUEUE_FULL: 503,
  E_NO_MODEL: 503,
  E_COMPUTE_UNAVAILABLE: 503,
  E_CANCELLED: 499,
  E_INTERNAL: 500,
};

const STATUS_BY_PREFIX: [string, number][] = [
  ['E_PROTOCOL_', 400],
  ['E_GEOJSON_', 400],
  ['E_ARG_', 400],
  ['E_BAD_', 400],
  ['E_LIMIT_', 413],
  ['E_MODEL_', 422],
  ['E_SLIDE_', 422],
  ['E_UNSUPPORTED_', 415],
];

export function httpStatusFor(code: string): number {
  const exact = STATUS_BY_CODE[code];
  if (exact !== undefined) return exact;
  for (const [prefix, status] of STATUS_BY_PREFIX) if (code.startsWith(prefix)) return status;
  return 500;
}

export function sendError(res: Response, err: unknown): void {
  const e = toAppError(err);
  const status = httpStatusFor(e.code);
  // A 500 is our bug: keep its details out of the answer but on the server log.
  if (status >= 500 && status !== 503) process.stderr.write(`loupe: ${e.code}: ${e.message}\n${e.stack ?? ''}\n`);
  res.status(status).json({ error: { code: e.code, message: e.message } });
}

/** Express error middleware: malformed JSON bodies and oversize bodies become coded errors too. */
export function errorMiddleware(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
  if (err instanceof AppError) return sendError(res, err);
  const type = typeof err === 'object' && err !== null && 'type' in err ? String(err.type) : '';
  if (type === 'entity.parse.failed') return sendError(res, new AppError('E_BAD_JSON', 'the request body is not valid JSON'));
  if (type === 'entity.too.large') return sendError(res, new AppError('E_PAYLOAD_TOO_LARGE', 'the request body is too large'));
  sendError(res, err);
}
