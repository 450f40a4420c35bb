// Reconnect delays: exponential with a cap and ±jitter, so many QuPath clients losing the same server
// do not all knock again at the same instant. Pure (the random source is passed in).
package qupath.ext.loupe.core

import groovy.transform.CompileStatic

@CompileStatic
class Backoff {
    long initialMs = 500
    long maxMs = 30_000
    double factor = 2
    /** ± this fraction of the delay. */
    double jitter = 0.2
    /** 0 = retry forever. */
    int maxAttempts = 0

    /** Delay before reconnect attempt `attempt` (1-based), or -1 when attempts are exhausted. */
    long delayMs(int attempt, Random random) {
        if (attempt < 1) throw new IllegalArgumentException("attempt is 1-based (got ${attempt})")
        if (maxAttempts > 0 && attempt > maxAttempts) return -1
        double d = Math.min((double) maxMs, initialMs * Math.pow(factor, attempt - 1))
        double j = jitter > 0 ? (random.nextDouble() * 2 - 1) * jitter * d : 0
        return Math.max(0L, Math.round(Math.min((double) maxMs, d + j)))
    }
}
