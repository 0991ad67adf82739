package lambdabox.runtime;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * Lambda's error document for a Java throwable:
 * {@code {"errorMessage","errorType","stackTrace":[...],"cause":{...}}}.
 * Written by hand rather than with Jackson so that an init error (Jackson
 * may be what failed) can always be reported.
 */
final class ErrorDocument {
    private ErrorDocument() {}

    /** Class prefixes of frames that are the runtime's, not the function's. */
    private static final String[] RUNTIME_FRAMES = {
        "lambdabox.runtime.", "jdk.internal.reflect.", "java.lang.reflect."
    };

    /** The document for {@code error}, as UTF-8 JSON. */
    static byte[] of(Throwable error) {
        StringBuilder out = new StringBuilder();
        write(out, error, Collections.newSetFromMap(new IdentityHashMap<>()));
        return out.toString().getBytes(UTF_8);
    }

    /** The document for an error that has no throwable behind it. */
    static byte[] of(String errorType, String errorMessage) {
        StringBuilder out = new StringBuilder("{\"errorMessage\":");
        string(out, errorMessage);
        out.append(",\"errorType\":");
        string(out, errorType);
        return out.append(",\"stackTrace\":[]}").toString().getBytes(UTF_8);
    }

    private static void write(StringBuilder out, Throwable error, Set<Throwable> seen) {
        seen.add(error);
        out.append('{');
        if (error.getMessage() != null) {
            out.append("\"errorMessage\":");
            string(out, error.getMessage());
            out.append(',');
        }
        out.append("\"errorType\":");
        string(out, error.getClass().getName());
        out.append(",\"stackTrace\":[");
        List<String> frames = frames(error);
        for (int i = 0; i < frames.size(); i++) {
            if (i > 0) {
                out.append(',');
            }
            string(out, frames.get(i));
        }
        out.append(']');
        Throwable cause = error.getCause();
        if (cause != null && !seen.contains(cause)) {
            out.append(",\"cause\":");
            write(out, cause, seen);
        }
        out.append('}');
    }

    /**
     * Frames as {@code class.method(File.java:42)}, without the runtime's own
     * frames at the bottom (reflection and this client): they say nothing
     * about the function.
     */
    static List<String> frames(Throwable error) {
        StackTraceElement[] trace = error.getStackTrace();
        int end = trace.length;
        while (end > 0 && isRuntimeFrame(trace[end - 1])) {
            end--;
        }
        if (end == 0) {
            end = trace.length;
        }
        List<String> frames = new ArrayList<>(end);
        for (int i = 0; i < end; i++) {
            StackTraceElement e = trace[i];
            String where;
            if (e.isNativeMethod()) {
                where = "Native Method";
            } else if (e.getFileName() == null) {
                where = "Unknown Source";
            } else if (e.getLineNumber() >= 0) {
                where = e.getFileName() + ":" + e.getLineNumber();
            } else {
                where = e.getFileName();
            }
            frames.add(e.getClassName() + "." + e.getMethodName() + "(" + where + ")");
        }
        return frames;
    }

    private static boolean isRuntimeFrame(StackTraceElement e) {
        for (String prefix : RUNTIME_FRAMES) {
            if (e.getClassName().startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }

    /** A JSON string literal. */
    static void string(StringBuilder out, String s) {
        if (s == null) {
            out.append("null");
            return;
        }
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
