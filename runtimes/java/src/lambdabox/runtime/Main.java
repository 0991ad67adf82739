package lambdabox.runtime;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;

/**
 * lambdabox's Java runtime client, started by {@code /var/runtime/bootstrap}:
 * loads the handler named by {@code _HANDLER} once, then serves events from
 * the Runtime API one at a time until the process is stopped.
 */
public final class Main {
    private Main() {}

    /** The system property the AWS SDK for Java reads the X-Ray trace header from. */
    static final String TRACE_PROPERTY = "com.amazonaws.xray.traceHeader";

    public static void main(String[] args) {
        // UTF-8 whatever the locale says; flushed at every newline and after
        // every invocation so log lines show while the function runs.
        System.setOut(new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out)), true, UTF_8));
        System.setErr(new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.err)), true, UTF_8));
        String address = System.getenv("AWS_LAMBDA_RUNTIME_API");
        if (address == null || address.isBlank()) {
            System.err.println("lambdabox java runtime: AWS_LAMBDA_RUNTIME_API is not set");
            System.exit(1);
        }
        RuntimeApi api = new RuntimeApi(address);
        Handler handler;
        try {
            String taskRoot = System.getenv().getOrDefault("LAMBDA_TASK_ROOT", "/var/task");
            ClassLoader loader = new FunctionClassLoader(taskRoot, "/opt");
            Thread.currentThread().setContextClassLoader(loader);
            handler = Handler.load(System.getenv("_HANDLER"), loader);
        } catch (Throwable t) {
            reportInitError(api, t);
            System.exit(1);
            return;
        }
        try {
            serve(api, handler);
        } catch (IOException e) {
            System.err.println("lambdabox java runtime: " + e.getMessage());
        }
        System.exit(1);
    }

    /** Tell the platform why the function cannot start, and log it. */
    private static void reportInitError(RuntimeApi api, Throwable t) {
        byte[] document;
        String errorType;
        if (t instanceof Handler.LoadError e) {
            document = ErrorDocument.of(e.errorType, e.getMessage());
            errorType = e.errorType;
        } else {
            document = ErrorDocument.of(t);
            errorType = t.getClass().getName();
        }
        System.err.println(new String(document, UTF_8));
        try {
            api.initError(document, errorType);
        } catch (IOException e) {
            System.err.println("lambdabox java runtime: reporting the init error failed: " + e.getMessage());
        }
        System.err.flush();
    }

    /**
     * The invocation loop. Returns only by throwing: when the Runtime API
     * refuses the next event (the platform wants this runtime gone) or
     * cannot be reached.
     */
    static void serve(RuntimeApi api, Handler handler) throws IOException {
        LambdaContext.Function function = new LambdaContext.Function();
        for (;;) {
            RuntimeApi.Invocation invocation = api.next();
            LambdaContext context = new LambdaContext(invocation, function);
            // Where Lambda's Java runtime puts the X-Ray trace header for the AWS SDK to find.
            if (invocation.traceId != null) {
                System.setProperty(TRACE_PROPERTY, invocation.traceId);
            } else {
                System.clearProperty(TRACE_PROPERTY);
            }
            byte[] result = null;
            Throwable failure = null;
            try {
                result = handler.invoke(invocation.body, context);
            } catch (Throwable t) {
                failure = t;
            }
            System.out.flush();
            if (failure == null) {
                api.respond(invocation.requestId, result);
            } else {
                // Lambda logs the error, then answers with its document.
                failure.printStackTrace();
                System.err.flush();
                api.fail(invocation.requestId, ErrorDocument.of(failure), failure.getClass().getName());
            }
        }
    }
}
