// The one connection between the extension and a Loupe server: java.net.http.WebSocket (in QuPath's
// runtime since 0.4) speaking protocol v1. It says hello and waits for welcome; correlates every
// answer with its request by requestId (progress frames go to the request's callback, the answer
// completes its future, an `error` fails it); buffers fragmented text frames until the last piece;
// serialises sends (the JDK allows one outstanding send); and reconnects with backoff when the link
// drops — except after a wrong token or protocol version, which a retry cannot fix.
// Threading: socket callbacks only buffer and hand frames to one ordered `events` thread, which runs
// progress callbacks, message listeners and future completions. Never block inside those callbacks
// (use the *Async future methods or your own executor); `call` is for script and worker threads.
package qupath.ext.loupe.core

import groovy.transform.CompileStatic

import java.net.http.HttpClient
import java.net.http.WebSocket
import java.nio.ByteBuffer
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionException
import java.util.concurrent.CompletionStage
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ExecutionException
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicLong
import java.util.function.Consumer

@CompileStatic
class WsSession implements AutoCloseable {

    enum State { DISCONNECTED, CONNECTING, CONNECTED, RECONNECTING, CLOSED }

    /** A state change, with the reason (the error that caused it, or the delay before the next attempt). */
    static class StateChange {
        State state
        String detail
        LoupeException error
        String toString() { "${state}${detail ? ': ' + detail : ''}" }
    }

    private static class Pending {
        final String answerType
        final Consumer<ServerMessage> onProgress
        final CompletableFuture<ServerMessage> future = new CompletableFuture<>()
        Pending(String answerType, Consumer<ServerMessage> onProgress) { this.answerType = answerType; this.onProgress = onProgress }
    }

    final URI uri
    final String token
    Backoff backoff = new Backoff()
    Duration connectTimeout = Duration.ofSeconds(10)
    /** Text messages larger than this (chars) close the connection instead of filling memory. */
    long maxMessageChars = 512L * 1024 * 1024
    String clientName = 'qupath-loupe'

    private final HttpClient http
    private final ScheduledExecutorService timer
    /** One ordered thread for everything user code sees. */
    private final ScheduledExecutorService events
    private final Random random = new Random()
    private final Map<String, Pending> pending = new ConcurrentHashMap<>()
    private final List<Consumer<ServerMessage>> messageListeners = new java.util.concurrent.CopyOnWriteArrayList<>()
    private final List<Consumer<StateChange>> stateListeners = new java.util.concurrent.CopyOnWriteArrayList<>()
    private final AtomicLong counter = new AtomicLong()
    private final String sessionTag = Long.toString(System.nanoTime() & 0xffffff, 36)

    private final Object lock = new Object()
    private volatile WebSocket ws
    private volatile State state = State.DISCONNECTED
    private volatile Welcome welcome
    private volatile boolean closing
    private int attempt
    private CompletableFuture<Welcome> firstConnect
    private CompletableFuture<Void> sendChain = CompletableFuture.completedFuture(null)
    /** Bumped per socket so callbacks from an old socket are ignored. */
    private int generation

    WsSession(URI uri, String token) {
        this.uri = uri
        this.token = token
        this.http = HttpClient.newBuilder().connectTimeout(connectTimeout).build()
        this.timer = Executors.newSingleThreadScheduledExecutor(daemon('loupe-ws-timer'))
        this.events = Executors.newSingleThreadScheduledExecutor(daemon('loupe-ws-events'))
    }

    private static java.util.concurrent.ThreadFactory daemon(String name) {
        return { Runnable r -> Thread t = new Thread(r, name); t.daemon = true; t } as java.util.concurrent.ThreadFactory
    }

    State getState() { state }

    /** The server's welcome of the current connection (models, limits, notices); null until connected. */
    Welcome getWelcome() { welcome }

    /** Listens to every server message (pushes such as train.progress and model.updated included). */
    AutoCloseable onMessage(Consumer<ServerMessage> listener) {
        messageListeners << listener
        return { messageListeners.remove(listener) } as AutoCloseable
    }

    AutoCloseable onState(Consumer<StateChange> listener) {
        stateListeners << listener
        return { stateListeners.remove(listener) } as AutoCloseable
    }

    /** Connects (hello → welcome). Later drops reconnect on their own; this future is for the first. */
    CompletableFuture<Welcome> connect() {
        synchronized (lock) {
            if (state == State.CLOSED) throw new LoupeException('E_SESSION_CLOSED', 'this session was closed; create a new one')
            if (firstConnect == null) {
                firstConnect = new CompletableFuture<>()
                open()
            }
            return firstConnect
        }
    }

    /** Sends a request; the future completes with its answer (answerType) or fails with the server's error. */
    CompletableFuture<ServerMessage> request(ClientMessage msg, Consumer<ServerMessage> onProgress = null) {
        if (msg.requestId == null) msg.requestId = nextRequestId(msg.type)
        String text = Json.write(msg.toJson())   // validates the message before anything is sent
        byte[] binary = msg instanceof PredictRegion ? ((PredictRegion) msg).png : null
        WebSocket socket = ws
        if (state != State.CONNECTED || socket == null) {
            return CompletableFuture.failedFuture(new LoupeException('E_NOT_CONNECTED', "not connected to the Loupe server at ${uri} (${state.name().toLowerCase()}); use Extensions › Loupe › Connect…", msg.requestId)) as CompletableFuture<ServerMessage>
        }
        Pending p = new Pending(msg.answerType, onProgress)
        pending[msg.requestId] = p
        send(socket, text, binary).whenComplete { Object ok, Throwable err ->
            if (err != null) fail(msg.requestId, new LoupeException('E_CONNECTION_LOST', "could not send ${msg.type}: ${root(err).message}", msg.requestId, root(err)))
        }
        return p.future
    }

    /** Blocking request for scripts and worker threads (never the JavaFX thread). */
    public <T extends ServerMessage> T call(ClientMessage msg, Class<T> answer, long timeoutMs, Consumer<ServerMessage> onProgress = null) {
        return await(request(msg, onProgress), msg, answer, timeoutMs)
    }

    /** Waits for the answer to `msg` (sent with request); LoupeException on error, timeout or disconnect. */
    public <T extends ServerMessage> T await(CompletableFuture<ServerMessage> f, ClientMessage msg, Class<T> answer, long timeoutMs) {
        try {
            ServerMessage m = timeoutMs > 0 ? f.get(timeoutMs, TimeUnit.MILLISECONDS) : f.get()
            return answer.cast(m)
        } catch (TimeoutException e) {
            pending.remove(msg.requestId)
            throw new LoupeException('E_CLIENT_TIMEOUT', "no answer to ${msg.type} within ${timeoutMs / 1000} s", msg.requestId, e)
        } catch (ExecutionException e) {
            Throwable c = root(e)
            if (c instanceof LoupeException) throw (LoupeException) c
            throw new LoupeException('E_CLIENT_FAILED', c.toString(), msg.requestId, c)
        }
    }

    String nextRequestId(String type) { "q${sessionTag}-${counter.incrementAndGet()}-${type}" }

    @Override
    void close() {
        WebSocket socket
        synchronized (lock) {
            if (state == State.CLOSED) return
            closing = true
            socket = ws
            ws = null
            setState(State.CLOSED, 'closed by the client', null)
        }
        failAll(new LoupeException('E_SESSION_CLOSED', 'the connection was closed by the client'))
        if (socket != null) {
            try {
                socket.sendClose(WebSocket.NORMAL_CLOSURE, 'bye').get(2, TimeUnit.SECONDS)
            } catch (Exception ignored) {
                socket.abort()
            }
        }
        firstConnect?.completeExceptionally(new LoupeException('E_SESSION_CLOSED', 'closed before connecting'))
        timer.shutdownNow()
        events.shutdown()
        try { events.awaitTermination(2, TimeUnit.SECONDS) } catch (InterruptedException ignored) { Thread.currentThread().interrupt() }
    }

    // ---- connection lifecycle ------------------------------------------------------------------

    private void open() {
        int gen
        synchronized (lock) {
            if (closing) return
            gen = ++generation
            setState(attempt == 0 ? State.CONNECTING : State.RECONNECTING, "connecting to ${uri}", null)
        }
        http.newWebSocketBuilder().connectTimeout(connectTimeout).buildAsync(uri, new Listener(gen)).whenComplete { WebSocket socket, Throwable err ->
            if (err != null) {
                dropped(gen, new LoupeException('E_CONNECTION_FAILED', "cannot reach the Loupe server at ${uri}: ${root(err).message ?: root(err).class.simpleName} (is `loupe serve` running?)", null, root(err)), true)
                return
            }
            synchronized (lock) {
                if (gen != generation || closing) { socket.abort(); return }
                ws = socket
            }
            Hello hello = new Hello(token: token, clientName: clientName)
            hello.requestId = nextRequestId('hello')
            Pending p = new Pending('welcome', null)
            pending[hello.requestId] = p
            send(socket, Json.write(hello.toJson()), null)
            p.future.orTimeout(connectTimeout.toMillis(), TimeUnit.MILLISECONDS).whenComplete { ServerMessage m, Throwable e2 ->
                if (e2 != null) {
                    pending.remove(hello.requestId)
                    LoupeException le = root(e2) instanceof LoupeException ? (LoupeException) root(e2) : new LoupeException('E_CONNECTION_FAILED', "no welcome from the server: ${root(e2)}", null, root(e2))
                    socket.abort()
                    dropped(gen, le, !fatal(le.code))
                    return
                }
                Welcome w = (Welcome) m
                if (w.protocol != Protocol.VERSION) {
                    socket.abort()
                    dropped(gen, new LoupeException('E_PROTOCOL_VERSION', "the server speaks protocol v${w.protocol}, this extension v${Protocol.VERSION}: update the extension or the server"), false)
                    return
                }
                synchronized (lock) {
                    if (gen != generation || closing) return
                    welcome = w
                    attempt = 0
                    setState(State.CONNECTED, "${w.serverName} ${w.serverVersion}", null)
                }
                firstConnect?.complete(w)
            }
        }
    }

    private static boolean fatal(String code) { code in ['E_AUTH_TOKEN', 'E_UNAUTHORIZED', 'E_PROTOCOL_VERSION'] }

    /** The socket `gen` is gone: fail its requests and, unless told otherwise, try again later. */
    private void dropped(int gen, LoupeException why, boolean retry) {
        long delay
        synchronized (lock) {
            if (gen != generation || closing) return
            ws = null
            generation++
            welcome = null
            failAll(new LoupeException('E_CONNECTION_LOST', "the connection to the Loupe server was lost (${why.message}); the request was not completed — send it again once reconnected", null, why))
            delay = retry ? backoff.delayMs(++attempt, random) : -1
            if (delay < 0) {
                setState(State.DISCONNECTED, why.message, why)
                firstConnect?.completeExceptionally(why)
                return
            }
            setState(State.RECONNECTING, "${why.message}; retrying in ${Math.round(delay / 100d) / 10d} s".toString(), why)
        }
        // The first connect() future keeps waiting through retries only if it already succeeded once;
        // otherwise the caller learns about the failure now (and the session keeps retrying).
        if (firstConnect != null && !firstConnect.isDone()) firstConnect.completeExceptionally(why)
        timer.schedule({ open() } as Runnable, delay, TimeUnit.MILLISECONDS)
    }

    private void setState(State s, String detail, LoupeException error) {
        state = s
        StateChange c = new StateChange(state: s, detail: detail, error: error)
        for (Consumer<StateChange> l : stateListeners) onEvents { l.accept(c) }
    }

    private void failAll(LoupeException e) {
        for (String id : new ArrayList<>(pending.keySet())) fail(id, new LoupeException(e.code, e.message, id, e.cause))
    }

    private void fail(String requestId, LoupeException e) {
        Pending p = pending.remove(requestId)
        if (p != null) onEvents { p.future.completeExceptionally(e) }
    }

    private void onEvents(Runnable r) {
        try {
            events.execute {
                try { r.run() } catch (Throwable t) { System.err.println("loupe: a listener failed: ${t}") }
            }
        } catch (java.util.concurrent.RejectedExecutionException ignored) {
            // closed: nobody is listening any more
        }
    }

    private CompletableFuture<Void> send(WebSocket socket, String text, byte[] binary) {
        synchronized (lock) {
            CompletableFuture<Void> next = sendChain.handle { Object a, Throwable b -> null }.thenCompose { Object ignored ->
                CompletableFuture<WebSocket> f = socket.sendText(text, true)
                if (binary != null) f = f.thenCompose { WebSocket s -> s.sendBinary(ByteBuffer.wrap(binary), true) }
                return f.thenApply { WebSocket s -> (Void) null }
            } as CompletableFuture<Void>
            sendChain = next
            return next
        }
    }

    // ---- incoming ------------------------------------------------------------------------------

    private void dispatch(String text) {
        ServerMessage m
        try {
            m = ServerMessages.parse(text)
        } catch (LoupeException e) {
            String rid = null
            try { rid = ServerMessages.requestIdOf(Json.parseObject(text)) } catch (LoupeException ignored) { }
            if (rid != null && pending.containsKey(rid)) fail(rid, e)
            else System.err.println("loupe: ignoring a server frame: ${e.message}")
            return
        }
        Pending p = m.requestId != null ? pending[m.requestId] : null
        if (p != null) {
            if (m instanceof ErrorMessage) {
                pending.remove(m.requestId)
                LoupeException le = ((ErrorMessage) m).toException()
                onEvents { p.future.completeExceptionally(le) }
            } else if (m.type == p.answerType) {
                pending.remove(m.requestId)
                onEvents { p.future.complete(m) }
            } else if (p.onProgress != null) {
                onEvents { p.onProgress.accept(m) }
            }
        }
        for (Consumer<ServerMessage> l : messageListeners) onEvents { l.accept(m) }
    }

    private class Listener implements WebSocket.Listener {
        final int gen
        private final StringBuilder buffer = new StringBuilder()
        private boolean overflow

        Listener(int gen) { this.gen = gen }

        void onOpen(WebSocket webSocket) { webSocket.request(1) }

        CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            // A large message arrives in pieces; only the last one makes it a message.
            if (!overflow) {
                if (buffer.length() + data.length() > maxMessageChars) {
                    overflow = true
                    buffer.setLength(0)
                    webSocket.sendClose(1009, 'message too big')
                    dropped(gen, new LoupeException('E_CLIENT_MESSAGE_TOO_BIG', "a server message exceeded ${maxMessageChars} characters"), true)
                } else {
                    buffer.append(data)
                }
            }
            if (last) {
                String text = buffer.toString()
                buffer.setLength(0)
                if (!overflow && gen == generation) dispatch(text)
                overflow = false
            }
            webSocket.request(1)
            return null
        }

        CompletionStage<?> onBinary(WebSocket webSocket, ByteBuffer data, boolean last) {
            webSocket.request(1)   // protocol v1 sends no binary frames to clients
            return null
        }

        CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            LoupeException why
            switch (statusCode) {
                case Protocol.CLOSE_UNAUTHORIZED:
                    why = new LoupeException('E_AUTH_TOKEN', "the server refused the token (${reason ?: statusCode}): set the token the server was started with in Connect…"); break
                case Protocol.CLOSE_PROTOCOL_VERSION:
                    why = new LoupeException('E_PROTOCOL_VERSION', "the server does not speak protocol v${Protocol.VERSION} (${reason}): update the extension or the server"); break
                default:
                    why = new LoupeException('E_CONNECTION_LOST', "server closed the connection (${statusCode}${reason ? ' ' + reason : ''})")
            }
            dropped(gen, why, !fatal(why.code))
            return null
        }

        void onError(WebSocket webSocket, Throwable error) {
            dropped(gen, new LoupeException('E_CONNECTION_LOST', "connection error: ${error.message ?: error.class.simpleName}", null, error), true)
        }
    }

    static Throwable root(Throwable t) {
        Throwable c = t
        while ((c instanceof CompletionException || c instanceof ExecutionException) && c.cause != null) c = c.cause
        return c
    }
}
