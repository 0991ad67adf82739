package com.amazonaws.services.lambda.runtime;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** The runtime's logger, reachable from code that has no {@link Context}. */
public final class LambdaRuntime {
    private LambdaRuntime() {}

    private static final LambdaLogger LOGGER = new LambdaLogger() {
        @Override
        public void log(String message) {
            write(String.valueOf(message));
        }

        @Override
        public void log(byte[] message) {
            write(message == null ? "null" : new String(message, StandardCharsets.UTF_8));
        }

        /**
         * One call is one record: end it with a newline so records never run
         * together, and flush so it shows while the invocation still runs.
         */
        private void write(String message) {
            PrintStream out = System.out;
            synchronized (out) {
                out.print(message);
                if (!message.endsWith("\n")) {
                    out.print('\n');
                }
                out.flush();
            }
        }
    };

    /** The logger every {@link Context#getLogger()} returns: standard output. */
    public static LambdaLogger getLogger() {
        return LOGGER;
    }
}
