// A failure the pathologist or a script can act on: a stable E_ code (the server's codes travel
// unchanged; client-side ones are listed in README.md) and a message naming what to change.
// Part of the protocol core: no QuPath imports.
package qupath.ext.loupe.core

import groovy.transform.CompileStatic

@CompileStatic
class LoupeException extends RuntimeException {
    /** Stable code, e.g. E_NO_MODEL (from the server) or E_CONNECTION_LOST (from this client). */
    final String code
    /** The request this error answers, when there is one. */
    final String requestId

    LoupeException(String code, String message, String requestId = null, Throwable cause = null) {
        super(message, cause)
        this.code = code
        this.requestId = requestId
    }

    @Override
    String toString() { "${code}: ${message}" }
}
