package lambdabox.runtime;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.URI;

/**
 * The client side of the Lambda Runtime API ({@code AWS_LAMBDA_RUNTIME_API}).
 * Plain {@link HttpURLConnection}: it reuses the connection between calls and
 * loads far fewer classes than {@code java.net.http}, which matters for cold
 * starts.
 */
final class RuntimeApi {
    /** Lambda's error-type header on error posts. */
    static final String ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type";

    private final String base;

    RuntimeApi(String address) {
        this.base = "http://" + address + "/2018-06-01/runtime";
    }

    /** One event to handle: its body and the headers that describe it. */
    static final class Invocation {
        final String requestId;
        final long deadlineMs;
        final String invokedFunctionArn;
        final String traceId;
        final String clientContext;
        final String cognitoIdentity;
        final byte[] body;

        Invocation(HttpURLConnection c, byte[] body) {
            this.requestId = c.getHeaderField("Lambda-Runtime-Aws-Request-Id");
            String deadline = c.getHeaderField("Lambda-Runtime-Deadline-Ms");
            long parsed;
            try {
                parsed = deadline == null ? Long.MAX_VALUE : Long.parseLong(deadline.trim());
            } catch (NumberFormatException e) {
                parsed = Long.MAX_VALUE;
            }
            this.deadlineMs = parsed;
            this.invokedFunctionArn = c.getHeaderField("Lambda-Runtime-Invoked-Function-Arn");
            this.traceId = c.getHeaderField("Lambda-Runtime-Trace-Id");
            this.clientContext = c.getHeaderField("Lambda-Runtime-Client-Context");
            this.cognitoIdentity = c.getHeaderField("Lambda-Runtime-Cognito-Identity");
            this.body = body;
        }
    }

    /** Long-poll for the next event. Anything but 200 means the runtime must stop. */
    Invocation next() throws IOException {
        HttpURLConnection c = open("/invocation/next", "GET");
        int status = c.getResponseCode();
        byte[] body = readAll(status < 400 ? c.getInputStream() : c.getErrorStream());
        if (status != 200) {
            throw new IOException(
                    "Runtime API answered " + status + " to invocation/next: " + new String(body, UTF_8));
        }
        return new Invocation(c, body);
    }

    /** Post a handler's result. */
    void respond(String requestId, byte[] body) throws IOException {
        post("/invocation/" + requestId + "/response", body, null);
    }

    /** Post an invocation's error document. */
    void fail(String requestId, byte[] document, String errorType) throws IOException {
        post("/invocation/" + requestId + "/error", document, errorType);
    }

    /** Post why the function could not start. */
    void initError(byte[] document, String errorType) throws IOException {
        post("/init/error", document, errorType);
    }

    private void post(String path, byte[] body, String errorType) throws IOException {
        HttpURLConnection c = open(path, "POST");
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(body.length);
        c.setRequestProperty("Content-Type", "application/json");
        if (errorType != null) {
            c.setRequestProperty(ERROR_TYPE_HEADER, errorType);
        }
        try (OutputStream out = c.getOutputStream()) {
            out.write(body);
        }
        int status = c.getResponseCode();
        byte[] answer = readAll(status < 400 ? c.getInputStream() : c.getErrorStream());
        if (status >= 300) {
            // The platform already knows (e.g. a result over 6 MB): say so in the log and go on.
            System.err.println("lambdabox java runtime: POST " + path + " answered " + status + ": "
                    + new String(answer, UTF_8));
        }
    }

    private HttpURLConnection open(String path, String method) throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create(base + path).toURL().openConnection(Proxy.NO_PROXY);
        c.setRequestMethod(method);
        c.setUseCaches(false);
        // The next event may be hours away: never time out the long poll.
        c.setConnectTimeout(0);
        c.setReadTimeout(0);
        return c;
    }

    /** Read a stream to its end (closing it lets the connection be reused). */
    static byte[] readAll(InputStream in) throws IOException {
        if (in == null) {
            return new byte[0];
        }
        try (in) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toByteArray();
        }
    }
}
