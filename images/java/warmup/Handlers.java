package warmup;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The training run's handlers (train): one of each form a function takes, so
 * the runtime interface client walks each of its paths (stream, Map, POJO,
 * RequestHandler class, a thrown error) while the JVM lists the classes it
 * loads. Each ends its JVM when the stand-in Runtime API sends the event
 * whose request id is {@code warm-up-done}.
 */
public class Handlers {
    static void exitWhenDone(Context context) {
        if ("warm-up-done".equals(context.getAwsRequestId())) {
            System.out.flush();
            System.exit(0);
        }
    }

    public void stream(InputStream in, OutputStream out, Context context) throws IOException {
        exitWhenDone(context);
        in.transferTo(out);
    }

    public Map<String, Object> map(Map<String, Object> event, Context context) {
        exitWhenDone(context);
        context.getLogger().log("warm-up " + context.getAwsRequestId());
        System.out.println("warm-up on stdout");
        Map<String, Object> out = new LinkedHashMap<>(event);
        out.put("function", context.getFunctionName());
        out.put("arn", context.getInvokedFunctionArn());
        out.put("remainingMs", context.getRemainingTimeInMillis());
        out.put("memory", context.getMemoryLimitInMB());
        out.put("identity", String.valueOf(context.getIdentity()));
        out.put("client", String.valueOf(context.getClientContext()));
        return out;
    }

    /** A POJO event and result. */
    public static class Person {
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

    public Person pojo(Person person, Context context) {
        exitWhenDone(context);
        person.setN(person.getN() + 1);
        return person;
    }

    public Object fail(Map<String, Object> event, Context context) {
        exitWhenDone(context);
        throw new IllegalArgumentException("warm-up failure", new IllegalStateException("cause"));
    }

    /** A RequestHandler class. */
    public static class Typed implements RequestHandler<Map<String, Object>, Integer> {
        @Override
        public Integer handleRequest(Map<String, Object> input, Context context) {
            exitWhenDone(context);
            return input.size();
        }
    }
}
