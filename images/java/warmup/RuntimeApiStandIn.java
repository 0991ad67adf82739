import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The training run's Runtime API (train), started with the JDK's source
 * launcher: a minimal HTTP/1.1 server on loopback that answers every
 * {@code next} with the events below in turn, the last one with request id
 * {@code warm-up-done} (on which the training handlers exit), and accepts
 * every post with 202. It writes its {@code host:port} to the file named by
 * its argument once it listens, and serves until it is killed.
 */
public final class RuntimeApiStandIn {
    private RuntimeApiStandIn() {}

    private static final String[] EVENTS = {
        "{\"name\":\"Ada\",\"n\":1,\"x\":2.5,\"ok\":true,\"none\":null,"
                + "\"list\":[1,\"two\",{\"three\":3}],\"text\":\"h\\u00e9llo \\u2603\"}",
        "{\"name\":\"Grace\",\"n\":2,\"list\":[]}",
        "{}",
    };

    private static int served;

    public static void main(String[] args) throws IOException {
        ServerSocket server = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
        Path address = Path.of(args[0]);
        Path partial = Path.of(args[0] + ".partial");
        Files.writeString(partial, "127.0.0.1:" + server.getLocalPort() + "\n");
        Files.move(partial, address, StandardCopyOption.ATOMIC_MOVE);
        for (;;) {
            Socket s = server.accept();
            Thread t = new Thread(() -> serve(s), "stand-in-connection");
            t.setDaemon(true);
            t.start();
        }
    }

    private static void serve(Socket s) {
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
                    int n;
                    synchronized (RuntimeApiStandIn.class) {
                        n = served++ % (EVENTS.length + 1);
                    }
                    String id = n == EVENTS.length ? "warm-up-done" : "warm-up-" + n;
                    String event = n == EVENTS.length ? "{}" : EVENTS[n];
                    long deadline = System.currentTimeMillis() + 30_000;
                    answer(out, "200 OK", event, "Lambda-Runtime-Aws-Request-Id: " + id + "\r\n"
                            + "Lambda-Runtime-Deadline-Ms: " + deadline + "\r\n"
                            + "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:w\r\n"
                            + "Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n"
                            + "Lambda-Runtime-Client-Context: {\"client\":{\"installation_id\":\"i\"},\"custom\":{\"k\":\"v\"},\"env\":{}}\r\n"
                            + "Lambda-Runtime-Cognito-Identity: {\"cognitoIdentityId\":\"i\",\"cognitoIdentityPoolId\":\"p\"}\r\n");
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
}
