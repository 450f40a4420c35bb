// The two addresses of one Loupe server, derived from what the pathologist types in Connect…:
// "localhost:8080", "http://host:8080", "https://host" or "ws://host:8080/ws" all work.
package qupath.ext.loupe.core

import groovy.transform.CompileStatic

@CompileStatic
class Endpoints {
    /** WebSocket endpoint, e.g. ws://localhost:8080/ws. */
    final URI ws
    /** REST base without trailing slash, e.g. http://localhost:8080. */
    final URI http

    private Endpoints(URI ws, URI http) { this.ws = ws; this.http = http }

    static Endpoints parse(String text) {
        String s = text?.trim()
        if (!s) throw new LoupeException('E_CLIENT_BAD_URL', 'the server URL is empty: enter e.g. http://localhost:8080')
        if (!s.contains('://')) s = 'http://' + s
        URI u
        try { u = new URI(s) } catch (URISyntaxException e) { throw new LoupeException('E_CLIENT_BAD_URL', "\"${text}\" is not a URL: enter e.g. http://localhost:8080", null, e) }
        String scheme = u.scheme?.toLowerCase(Locale.ROOT)
        boolean secure = scheme in ['https', 'wss']
        if (!(scheme in ['http', 'https', 'ws', 'wss']) || !u.host) throw new LoupeException('E_CLIENT_BAD_URL', "\"${text}\" needs http(s):// or ws(s):// and a host")
        String path = (u.path ?: '').replaceAll('/+$', '')
        if (path.endsWith('/ws')) path = path.substring(0, path.length() - 3)
        String auth = u.port > 0 ? "${u.host}:${u.port}" : u.host
        return new Endpoints(new URI("${secure ? 'wss' : 'ws'}://${auth}${path}/ws"), new URI("${secure ? 'https' : 'http'}://${auth}${path}"))
    }
}
