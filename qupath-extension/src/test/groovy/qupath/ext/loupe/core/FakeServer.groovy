// Starts a Node test server from src/test/node/ (through the repository's tsx runner) and stops it
// when the test is done. The script prints "KEY value" lines, then "READY"; closing its stdin stops it.
package qupath.ext.loupe.core

import groovy.transform.CompileStatic

import java.util.concurrent.TimeUnit

@CompileStatic
class FakeServer implements AutoCloseable {
    final Process process
    final Map<String, String> info = [:]
    final StringBuffer log = new StringBuffer()

    /** The protocol-v1 fake (fake-server.ts), optionally requiring a token. */
    FakeServer(String token = null) { this('fake-server.ts', token != null ? ['--token', token] : [], 30_000) }

    FakeServer(String script, List<String> args, long startTimeoutMs) {
        String repo = System.getenv('LOUPE_REPO_ROOT') ?: new File('..').canonicalPath
        List<String> cmd = ['node', "${repo}/bin/run-ts.mjs".toString(), "${repo}/qupath-extension/src/test/node/${script}".toString()] + args
        process = new ProcessBuilder(cmd).directory(new File(repo)).redirectErrorStream(true).start()
        BufferedReader r = new BufferedReader(new InputStreamReader(process.inputStream, 'UTF-8'))
        boolean ready = false
        long deadline = System.currentTimeMillis() + startTimeoutMs
        while (!ready && System.currentTimeMillis() < deadline) {
            String line = r.readLine()
            if (line == null) break
            log.append(line).append('\n')
            if (line == 'READY') ready = true
            else if (line ==~ /^[A-Z_]+ .*/) info[line.substring(0, line.indexOf(' '))] = line.substring(line.indexOf(' ') + 1)
        }
        if (!ready) { process.destroyForcibly(); throw new IllegalStateException("${script} did not start:\n${log}") }
        Thread t = new Thread({ String l; while ((l = r.readLine()) != null) log.append(l).append('\n') } as Runnable, 'node-server-log')
        t.daemon = true
        t.start()
    }

    int getPort() { Integer.parseInt(info['PORT']) }

    URI getWsUri() { new URI("ws://127.0.0.1:${port}/ws") }

    @Override
    void close() {
        try { process.outputStream.close() } catch (IOException ignored) { }
        if (!process.waitFor(15, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}
