package lambdabox.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.ObjectReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Optional;

/**
 * The function's handler, found from {@code _HANDLER} as Lambda's Java
 * runtime finds it: {@code package.Class::method}, or {@code package.Class}
 * for a class implementing {@link RequestHandler} or
 * {@link RequestStreamHandler}. The class is loaded and, for an instance
 * method, constructed once, at init; every invocation reuses that instance.
 *
 * <p>Method forms: {@code (InputStream, OutputStream[, Context])} get the raw
 * event and write the raw result; {@code (I[, Context])} and {@code ()} get the
 * event converted to {@code I} from JSON and have their result converted to
 * JSON.
 */
final class Handler {
    /** Why the handler cannot be loaded: reported to {@code /runtime/init/error}. */
    static final class LoadError extends Exception {
        private static final long serialVersionUID = 1L;
        final String errorType;

        LoadError(String errorType, String message) {
            super(message);
            this.errorType = errorType;
        }
    }

    private final Object instance;
    private final Method method;
    private final boolean stream;
    private final boolean takesContext;
    /** The event's type for non-stream forms with a parameter; null otherwise. */
    private final Type eventType;
    private final Class<?> handlerClass;
    /** Built at init for non-stream forms; stream handlers never load Jackson. */
    private ObjectReader eventReader;

    private Handler(Class<?> cls, Object instance, Method method) {
        this.handlerClass = cls;
        this.instance = instance;
        this.method = method;
        Class<?>[] params = method.getParameterTypes();
        this.stream = isStream(params);
        this.takesContext = params.length > 0 && params[params.length - 1] == Context.class;
        this.eventType = !stream && params.length > 0 && params[0] != Context.class
                ? method.getGenericParameterTypes()[0]
                : null;
    }

    /** Load the handler named {@code spec} with the function's class loader. */
    static Handler load(String spec, ClassLoader loader) throws Throwable {
        if (spec == null || spec.isBlank()) {
            throw new LoadError("java.lang.IllegalArgumentException", "No handler given (_HANDLER is empty)");
        }
        String className = spec;
        String methodName = null;
        int sep = spec.indexOf("::");
        if (sep >= 0) {
            className = spec.substring(0, sep);
            methodName = spec.substring(sep + 2);
            if (className.isEmpty() || methodName.isEmpty()) {
                throw new LoadError("java.lang.IllegalArgumentException", "Invalid handler " + spec
                        + ": expected package.Class::method or package.Class");
            }
        }
        Class<?> cls;
        try {
            cls = Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            throw new LoadError("java.lang.ClassNotFoundException", "Class not found: " + className);
        }
        if (methodName == null) {
            if (!RequestHandler.class.isAssignableFrom(cls) && !RequestStreamHandler.class.isAssignableFrom(cls)) {
                throw new LoadError("java.lang.IllegalArgumentException", "Class " + className
                        + " does not implement RequestHandler or RequestStreamHandler; name a method as "
                        + className + "::method");
            }
            methodName = "handleRequest";
        }
        String wanted = methodName;
        Method method = choose(cls, wanted).orElseThrow(() -> new LoadError("java.lang.NoSuchMethodException",
                "No public method named " + wanted + " with appropriate method signature found on class "
                        + cls.getName()));
        // A public method of a class that is not public is still a handler, as on Lambda.
        try {
            method.setAccessible(true);
        } catch (RuntimeException e) {
            // A JDK class's method: the invocation reports whatever access it lacks.
        }
        Object instance = null;
        if (!Modifier.isStatic(method.getModifiers())) {
            try {
                var constructor = cls.getDeclaredConstructor();
                constructor.setAccessible(true);
                instance = constructor.newInstance();
            } catch (NoSuchMethodException e) {
                throw new LoadError("java.lang.NoSuchMethodException",
                        "Class " + cls.getName() + " has no constructor without arguments");
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        }
        Handler handler = new Handler(cls, instance, method);
        if (!handler.stream) {
            handler.prepareJson();
        }
        return handler;
    }

    /**
     * Load Jackson and build the converters for this handler's types now:
     * init runs with the whole CPU, while invocations get the share the
     * function's memory buys (0.07 vCPU at 128 MB), where this work would
     * take seconds. Only reflection happens here, no user code runs. A type
     * Jackson cannot handle is left for the invocation to report.
     */
    private void prepareJson() {
        try {
            Json.warmUp();
            if (eventType != null) {
                eventReader();
            }
            Class<?> result = method.getReturnType();
            if (!result.isInterface() && !result.isPrimitive() && result != Object.class) {
                Json.MAPPER.writerFor(result);
            }
        } catch (RuntimeException | java.io.IOException e) {
            // Reported, with its cause, by the first invocation that meets it.
        }
    }

    /**
     * The public method named {@code name} that Lambda would pick: one in a
     * supported form; among several, a non-bridge one, then the one with the
     * most parameters, then one ending in a {@link Context}.
     */
    private static Optional<Method> choose(Class<?> cls, String name) {
        return Arrays.stream(cls.getMethods())
                .filter(m -> m.getName().equals(name) && supported(m.getParameterTypes()))
                .min(Comparator.<Method, Boolean>comparing(Method::isBridge)
                        .thenComparing(m -> -m.getParameterCount())
                        .thenComparing(m -> !endsWithContext(m.getParameterTypes())));
    }

    private static boolean endsWithContext(Class<?>[] p) {
        return p.length > 0 && p[p.length - 1] == Context.class;
    }

    private static boolean isStream(Class<?>[] p) {
        return p.length >= 2 && p[0] == InputStream.class && p[1] == OutputStream.class;
    }

    private static boolean supported(Class<?>[] p) {
        return switch (p.length) {
            case 0, 1 -> true;
            case 2 -> isStream(p) || p[1] == Context.class;
            case 3 -> isStream(p) && p[2] == Context.class;
            default -> false;
        };
    }

    /**
     * Run the handler on one event; returns the response body. Throws what the
     * handler threw, or {@link RuntimeException}s naming a JSON conversion
     * that failed (with Jackson's error as the cause).
     */
    byte[] invoke(byte[] event, Context context) throws Throwable {
        Object[] args;
        ByteArrayOutputStream output = null;
        if (stream) {
            output = new ByteArrayOutputStream();
            args = takesContext
                    ? new Object[] {new ByteArrayInputStream(event), output, context}
                    : new Object[] {new ByteArrayInputStream(event), output};
        } else {
            Object input = null;
            if (eventType != null) {
                try {
                    input = eventReader().readValue(event);
                } catch (Exception e) {
                    throw new RuntimeException("An error occurred during JSON parsing", e);
                }
            }
            int n = method.getParameterCount();
            args = n == 0 ? new Object[0]
                    : eventType == null ? new Object[] {context}
                    : n == 1 ? new Object[] {input} : new Object[] {input, context};
        }
        Object result;
        try {
            result = method.invoke(instance, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
        if (output != null) {
            return output.toByteArray();
        }
        try {
            return Json.write(result);
        } catch (Exception e) {
            throw new RuntimeException("An error occurred during JSON serialization of response", e);
        }
    }

    /** The event's reader; a type variable of a RequestHandler is resolved against the class. */
    private ObjectReader eventReader() {
        if (eventReader == null) {
            JavaType type = eventType instanceof TypeVariable && RequestHandler.class.isAssignableFrom(handlerClass)
                    ? Json.requestHandlerInput(handlerClass)
                    : Json.type(eventType);
            eventReader = Json.reader(type);
        }
        return eventReader;
    }
}
