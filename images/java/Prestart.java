package lambdabox;

import com.amazonaws.services.lambda.runtime.api.client.AWSLambda;
import com.amazonaws.services.lambda.runtime.serialization.PojoSerializer;
import com.amazonaws.services.lambda.runtime.serialization.factories.JacksonFactory;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.FileReader;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Type;
import java.nio.charset.Charset;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * lambdabox's launcher for a Java runtime started ahead of need: the JVM that
 * {@code prestart MEMORY} starts in a prewarmed container, before any function
 * is known, as the sandbox user, with the environment every function of the
 * runtime shares and the flags the bootstrap picks for MEMORY.
 *
 * <p>Before the function is known it does only what reads no variable:
 * it loads (without initialising) the classes the image's training run
 * recorded, loads the runtime interface client's JNI library and runs
 * Jackson (the client's serializer) once. The client's classes that read the
 * environment as they initialise (AWSLambda, LambdaEnvironment) stay
 * uninitialised. Then it blocks reading descriptor 3 until lambdabox-init
 * writes the function's whole environment there (lambdabox-protocol's
 * handoff: a 4-byte big-endian length, then NAME=VALUE entries each ended by
 * a NUL) and closes it. That becomes the C library's environment (children
 * started without an environment of their own inherit it) and the one
 * System.getenv and ProcessBuilder read, with what the bootstrap's shell
 * adds (PWD; no OLDPWD). Then it calls AWSLambda.main with the handler, as
 * the bootstrap's java command does.
 *
 * <p>lambdabox hands a function to this JVM only if nothing the JVM read as
 * it started (JAVA_TOOL_OPTIONS, _JAVA_OPTIONS, JDK_JAVA_OPTIONS, the
 * locale, the home folder…) differs for it, and only at the MemorySize its
 * flags were chosen for.
 */
public final class Prestart {
    private static final String LIB = "/var/runtime/lib/";

    /** Carries the generic type Map&lt;String, Object&gt; (a common handler's event), to warm Jackson for it. */
    @SuppressWarnings("unused")
    private static Map<String, Object> mapOfObjects;

    private Prestart() {}

    /** Descriptor 3 read to its end and closed: the message's entries, or null if it was cut short. */
    private static native byte[] takeMessage();

    /** Make {@code entries} (NAME=VALUE, each ended by a NUL) the C library's whole environment. */
    private static native void replaceEnvironment(byte[] entries);

    public static void main(String[] args) throws Throwable {
        System.load(LIB + "liblambdabox-prestart.so");
        warmUp();
        byte[] message = takeMessage();
        if (message == null) {
            System.err.println("lambdabox: the function environment arrived cut short");
            System.exit(1);
        }
        Map<String, String> env = parse(message);
        // The bootstrap's `cd` (sh exports PWD) and `unset OLDPWD`.
        env.put("PWD", System.getProperty("user.dir"));
        env.remove("OLDPWD");
        replaceEnvironment(encode(env));
        replaceJavaEnvironment(env);
        String handler = env.getOrDefault("_HANDLER", "");
        System.setProperty("sun.java.command", AWSLambda.class.getName() + " " + handler);
        AWSLambda.main(new String[] {handler});
    }

    /**
     * What a cold start would otherwise spend time on and that reads no
     * variable: loading the classes the training run loaded (linking and
     * initialising are left to their first use), the client's JNI library,
     * and a first JSON round trip through Jackson.
     */
    private static void warmUp() throws Throwable {
        ClassLoader loader = ClassLoader.getSystemClassLoader();
        try (BufferedReader list = new BufferedReader(new FileReader(LIB + "classlist"))) {
            String line;
            while ((line = list.readLine()) != null) {
                if (line.isEmpty() || line.startsWith("@") || line.startsWith("#")) {
                    continue;
                }
                try {
                    Class.forName(line.split(" ", 2)[0].replace('/', '.'), false, loader);
                } catch (ClassNotFoundException | LinkageError e) {
                    // Not on this class path: the function would not load it either.
                }
            }
        } catch (IOException e) {
            // No list: only a slower start.
        }
        Method load = Class.forName("com.amazonaws.services.lambda.runtime.api.client.runtimeapi.JniHelper")
                .getDeclaredMethod("load");
        load.setAccessible(true);
        load.invoke(null);
        String json = "{\"a\":[1,\"b\",true,null,{\"c\":1.5}]}";
        @SuppressWarnings("rawtypes")
        PojoSerializer<Map> maps = JacksonFactory.getInstance().getSerializer(Map.class);
        maps.toJson(maps.fromJson(json), new ByteArrayOutputStream());
        Type generic = Prestart.class.getDeclaredField("mapOfObjects").getGenericType();
        PojoSerializer<Object> typed = JacksonFactory.getInstance().getSerializer(generic);
        typed.toJson(typed.fromJson(json), new ByteArrayOutputStream());
        JacksonFactory.getInstance().getSerializer(String.class).fromJson("\"warm\"");
        // What the hand-over and the client's start use from the JDK: the
        // environment's classes, and the security settings AWSLambda sets.
        new ProcessBuilder().environment();
        Class.forName("java.security.Security", true, loader);
    }

    /** The entries of a message, in order (the last of a name winning). */
    static Map<String, String> parse(byte[] entries) {
        Charset charset = jnuCharset();
        Map<String, String> env = new LinkedHashMap<>();
        int start = 0;
        for (int i = 0; i < entries.length; i++) {
            if (entries[i] != 0) {
                continue;
            }
            String entry = new String(entries, start, i - start, charset);
            int eq = entry.indexOf('=');
            if (eq > 0) {
                env.put(entry.substring(0, eq), entry.substring(eq + 1));
            }
            start = i + 1;
        }
        return env;
    }

    /** {@code env} as NAME=VALUE entries each ended by a NUL. */
    static byte[] encode(Map<String, String> env) {
        Charset charset = jnuCharset();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Map.Entry<String, String> e : env.entrySet()) {
            out.writeBytes((e.getKey() + "=" + e.getValue()).getBytes(charset));
            out.write(0);
        }
        return out.toByteArray();
    }

    /** The charset the JVM decodes the environment with. */
    private static Charset jnuCharset() {
        try {
            return Charset.forName(System.getProperty("sun.jnu.encoding"));
        } catch (RuntimeException e) {
            return Charset.defaultCharset();
        }
    }

    /**
     * Make {@code env} what System.getenv and new ProcessBuilders see: the
     * JDK keeps the environment it read at start in ProcessEnvironment's
     * theEnvironment (System.getenv is a view of it, ProcessBuilder copies
     * it). A ProcessBuilder's own environment map builds entries of the
     * JDK's private types; those replace theEnvironment's contents. Done
     * through sun.misc.Unsafe, so the JVM needs no --add-opens the function
     * would notice.
     */
    static void replaceJavaEnvironment(Map<String, String> env) throws ReflectiveOperationException {
        Map<String, String> fresh = new ProcessBuilder().environment();
        fresh.clear();
        fresh.putAll(env);
        Field unsafeField = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
        unsafeField.setAccessible(true);
        sun.misc.Unsafe unsafe = (sun.misc.Unsafe) unsafeField.get(null);
        Field inner = fresh.getClass().getDeclaredField("m");
        @SuppressWarnings("unchecked")
        Map<Object, Object> entries = (Map<Object, Object>) unsafe.getObject(fresh, unsafe.objectFieldOffset(inner));
        Field the = Class.forName("java.lang.ProcessEnvironment").getDeclaredField("theEnvironment");
        @SuppressWarnings({"unchecked", "deprecation"})
        Map<Object, Object> live =
                (Map<Object, Object>) unsafe.getObject(unsafe.staticFieldBase(the), unsafe.staticFieldOffset(the));
        live.clear();
        live.putAll(entries);
    }
}
