package lambdabox.runtime;

import java.io.File;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Loads the function's code as Lambda does: the {@code .class} tree at the
 * task root, then {@code lib/*.jar} there, then layers' {@code java/lib/*.jar}
 * under {@code /opt}.
 *
 * <p>The function sees the JDK and the aws-lambda-java-core interfaces, and
 * nothing else of the runtime: a function that bundles its own Jackson (or
 * its own copy of aws-lambda-java-core) gets its own Jackson, and the
 * runtime's {@code Context} is the one its code is linked against.
 */
final class FunctionClassLoader extends URLClassLoader {
    /** The classes the runtime shares with the function: aws-lambda-java-core's API. */
    private static final Set<String> SHARED = Set.of(
            "com.amazonaws.services.lambda.runtime.Context",
            "com.amazonaws.services.lambda.runtime.RequestHandler",
            "com.amazonaws.services.lambda.runtime.RequestStreamHandler",
            "com.amazonaws.services.lambda.runtime.LambdaLogger",
            "com.amazonaws.services.lambda.runtime.LambdaRuntime",
            "com.amazonaws.services.lambda.runtime.CognitoIdentity",
            "com.amazonaws.services.lambda.runtime.ClientContext",
            "com.amazonaws.services.lambda.runtime.Client",
            "com.amazonaws.services.lambda.runtime.logging.LogLevel");

    static {
        registerAsParallelCapable();
    }

    FunctionClassLoader(String taskRoot, String optRoot) {
        super("function", classpath(taskRoot, optRoot), new SharedOnly());
    }

    /** The classpath, in Lambda's order; jars within a folder sorted by name so it is stable. */
    static URL[] classpath(String taskRoot, String optRoot) {
        List<URL> urls = new ArrayList<>();
        try {
            urls.add(new File(taskRoot).toURI().toURL());
            addJars(urls, new File(taskRoot, "lib"));
            addJars(urls, new File(optRoot, "java/lib"));
        } catch (MalformedURLException e) {
            throw new IllegalStateException(e);
        }
        return urls.toArray(new URL[0]);
    }

    private static void addJars(List<URL> urls, File dir) throws MalformedURLException {
        File[] jars = dir.listFiles((d, name) -> name.endsWith(".jar"));
        if (jars == null) {
            return;
        }
        Arrays.sort(jars);
        for (File jar : jars) {
            urls.add(jar.toURI().toURL());
        }
    }

    /** The parent: the JDK's platform classes plus {@link #SHARED} from the runtime. */
    private static final class SharedOnly extends ClassLoader {
        static {
            registerAsParallelCapable();
        }

        SharedOnly() {
            super("lambda-core", ClassLoader.getPlatformClassLoader());
        }

        @Override
        protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
            ClassLoader runtime = FunctionClassLoader.class.getClassLoader();
            if (SHARED.contains(name)) {
                return runtime.loadClass(name);
            }
            try {
                return super.loadClass(name, resolve);
            } catch (ClassNotFoundException notPlatform) {
                // A few JDK modules (jdk.compiler, jdk.jshell, …) belong to the
                // application loader: hand those out too, but never a class of
                // the runtime's own classpath (an unnamed module).
                if (name.startsWith("jdk.") || name.startsWith("com.sun.") || name.startsWith("sun.")) {
                    Class<?> c = runtime.loadClass(name);
                    if (c.getModule().isNamed()) {
                        return c;
                    }
                }
                throw notPlatform;
            }
        }
    }
}
