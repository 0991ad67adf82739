package lambdabox.runtime;

import static java.nio.charset.StandardCharsets.UTF_8;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.Map;

/**
 * The image build's training run (`bootstrap --train`): serves a few events of
 * every handler form through the real invocation loop, against a small
 * in-process stand-in for the Runtime API, so that the JVM records every
 * class a cold start loads (the runtime's, Jackson's, the JDK's HTTP client)
 * in a class-data-sharing archive. Later starts map that archive instead of
 * loading and verifying those classes one by one.
 */
public final class Warmup {
    private Warmup() {}

    /** Events each handler gets; then {@code next} answers 500 and the loop ends. */
    private static final String EVENT = "{\"name\":\"Ada\",\"n\":1,\"x\":2.5,\"ok\":true,\"none\":null,"
            + "\"list\":[1,\"two\",{\"three\":3}],\"text\":\"h\\u00e9llo \\u2603\"}";

    public static void main(String[] args) throws Throwable {
        ClassLoader loader = new FunctionClassLoader("/nonexistent-task", "/nonexistent-opt");
        try {
            Handler.load("no.such.Handler", loader);
        } catch (Handler.LoadError expected) {
            ErrorDocument.of(expected.errorType, expected.getMessage());
        }
        ClassLoader self = Warmup.class.getClassLoader();
        // The handlers' logs and the deliberate failure's stack trace would
        // read like trouble in the image build's output: write them nowhere.
        PrintStream out = System.out;
        PrintStream err = System.err;
        System.setOut(new PrintStream(OutputStream.nullOutputStream(), true, UTF_8));
        System.setErr(new PrintStream(OutputStream.nullOutputStream(), true, UTF_8));
        List<String> specs = List.of(
                "lambdabox.runtime.Warmup::map",
                "lambdabox.runtime.Warmup::bean",
                "lambdabox.runtime.Warmup::stream",
                "lambdabox.runtime.Warmup::text",
                "lambdabox.runtime.Warmup::fail",
                "lambdabox.runtime.Warmup$Typed");
        for (String spec : specs) {
            try (FakeApi api = new FakeApi(2)) {
                Main.serve(new RuntimeApi(api.address()), Handler.load(spec, self));
            } catch (IOException endOfEvents) {
                // The stand-in said 500: this handler is done.
            }
        }
        System.setOut(out);
        System.setErr(err);
        System.out.println("warm-up: served " + specs.size() + " handler forms; recording the CDS archive");
    }

    public static Map<String, Object> map(Map<String, Object> event, Context context) {
        context.getLogger().log("warm-up " + context.getAwsRequestId() + " " + context.getRemainingTimeInMillis());
        return Map.of("event", event, "function", String.valueOf(context.getFunctionName()),
                "identity", String.valueOf(context.getIdentity()), "client", String.valueOf(context.getClientContext()));
    }

    /** A POJO event and result. */
    public static final class Person {
        public String name;
        private int n;
        public List<Object> list;

        public int getN() {
            return n;
        }

        public void setN(int n) {
            this.n = n;
        }
    }

    public static Person bean(Person person) {
        return person;
    }

    public static void stream(InputStream in, OutputStream out, Context context) throws IOException {
        in.transferTo(out);
    }

    public static String text(Object event) {
        return String.valueOf(event);
    }

    public static Object fail(Map<String, Object> event) {
        throw new IllegalArgumentException("warm-up failure", new IllegalStateException("cause"));
    }

    /** A RequestHandler class. */
    public static final class Typed implements RequestHandler<Map<String, Object>, Integer> {
        @Override
        public Integer handleRequest(Map<String, Object> input, Context context) {
            return input.size();
        }
    }

    /** A minimal HTTP/1.1 Runtime API: {@code n} events, then 500; posts get 202. */
    private static final class FakeApi implements AutoCloseable {
        private final ServerSocket server;
        private int left;

        FakeApi(int events) throws IOException {
            server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
            left = events;
            Thread t = new Thread(this::accept, "fake-runtime-api");
            t.setDaemon(true);
            t.start();
        }

        String address() {
            return "127.0.0.1:" + server.getLocalPort();
        }

        private void accept() {
            try {
                for (;;) {
                    Socket s = server.accept();
                    Thread t = new Thread(() -> serve(s), "fake-runtime-api-conn");
                    t.setDaemon(true);
                    t.start();
                }
            } catch (IOException closed) {
                // close() ends the accept loop.
            }
        }

        private void serve(Socket s) {
            try (s) {
                InputStream in = new BufferedInputStream(s.getInputStream());
                OutputStream out = s.getOutputStream();
                for (;;) {
                    String requestLine = line(in);
                    if (requestLine == null || requestLine.isEmpty()) {
                        return;
                    }
                    int length = 0;
                    for (String h = line(in); h != null && !h.isEmpty(); h = line(in)) {
                        if (h.toLowerCase().startsWith("content-length:")) {
                            length = Integer.parseInt(h.substring(15).trim());
                        }
                    }
                    in.readNBytes(length);
                    if (requestLine.startsWith("GET")) {
                        boolean more;
                        synchronized (this) {
                            more = left-- > 0;
                        }
                        if (more) {
                            long deadline = System.currentTimeMillis() + 3000;
                            answer(out, "200 OK", EVENT, "Lambda-Runtime-Aws-Request-Id: warm-up\r\n"
                                    + "Lambda-Runtime-Deadline-Ms: " + deadline + "\r\n"
                                    + "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:0:function:w\r\n"
                                    + "Lambda-Runtime-Cognito-Identity: {\"cognitoIdentityId\":\"i\"}\r\n");
                        } else {
                            answer(out, "500 Internal Server Error", "{}", "");
                        }
                    } else {
                        answer(out, "202 Accepted", "{\"status\":\"OK\"}", "");
                    }
                }
            } catch (IOException e) {
                // The client went away.
            }
        }

        private static void answer(OutputStream out, String status, String body, String headers) throws IOException {
            byte[] b = body.getBytes(UTF_8);
            out.write(("HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " + b.length
                    + "\r\n" + headers + "\r\n").getBytes(UTF_8));
            out.write(b);
            out.flush();
        }

        private static String line(InputStream in) throws IOException {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            for (int c = in.read(); c != -1; c = in.read()) {
                if (c == '\n') {
                    return buf.toString(UTF_8).stripTrailing();
                }
                buf.write(c);
            }
            return buf.size() == 0 ? null : buf.toString(UTF_8);
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}
