// Starts src/test/node/fake-server.ts (a protocol-v1 server that checks our frames with the server's
// own TypeScript schemas) on a free port, and stops it when the test is done.
package qupath.ext.loupe.core

import groovy.transform.CompileStatic

import java.util.concurrent.TimeUnit

@CompileStatic
class FakeServer implements AutoCloseable {
    final Process process
    final int port
    final StringBuffer log = new StringBuffer()

    FakeServer(String token = null) {
        String repo = System.getenv('LOUPE_REPO_ROOT') ?: new File('..').canonicalPath
        List<String> cmd = ['node', "${repo}/bin/run-ts.mjs".toString(), "${repo}/qupath-extension/src/test/node/fake-server.ts".toString()]
        if (token != null) cmd += ['--token', token]
        process = new ProcessBuilder(cmd).directory(new File(repo)).redirectErrorStream(true).start()
        BufferedReader r = new BufferedReader(new InputStreamReader(process.inputStream, 'UTF-8'))
        Integer p = null
        long deadline = System.currentTimeMillis() + 30_000
        while (p == null && System.currentTimeMillis() < deadline) {
            String line = r.readLine()
            if (line == null) break
            log.append(line).append('\n')
            if (line.startsWith('PORT ')) p = Integer.parseInt(line.substring(5).trim())
        }
        if (p == null) { process.destroyForcibly(); throw new IllegalStateException("fake server did not start:\n${log}") }
        port = p
        Thread t = new Thread({ String l; while ((l = r.readLine()) != null) log.append(l).append('\n') } as Runnable, 'fake-server-log')
        t.daemon = true
        t.start()
    }

    URI getWsUri() { new URI("ws://127.0.0.1:${port}/ws") }

    @Override
    void close() {
        try { process.outputStream.close() } catch (IOException ignored) { }
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}
