package lambdabox.runtime;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import java.util.Map;

/** The {@link Context} of one invocation, from the Runtime API's headers and the environment. */
final class LambdaContext implements Context {
    private final RuntimeApi.Invocation invocation;
    private final Function function;

    /** What stays the same for every invocation in this process. */
    static final class Function {
        final String name = System.getenv("AWS_LAMBDA_FUNCTION_NAME");
        final String version = System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
        final String logGroup = System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
        final String logStream = System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
        final int memoryMb = parseInt(System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 128);

        private static int parseInt(String s, int fallback) {
            try {
                return s == null ? fallback : Integer.parseInt(s.trim());
            } catch (NumberFormatException e) {
                return fallback;
            }
        }
    }

    LambdaContext(RuntimeApi.Invocation invocation, Function function) {
        this.invocation = invocation;
        this.function = function;
    }

    @Override
    public String getAwsRequestId() {
        return invocation.requestId;
    }

    @Override
    public String getLogGroupName() {
        return function.logGroup;
    }

    @Override
    public String getLogStreamName() {
        return function.logStream;
    }

    @Override
    public String getFunctionName() {
        return function.name;
    }

    @Override
    public String getFunctionVersion() {
        return function.version;
    }

    @Override
    public String getInvokedFunctionArn() {
        return invocation.invokedFunctionArn;
    }

    @Override
    public CognitoIdentity getIdentity() {
        Map<String, Object> doc = Json.parseObject(invocation.cognitoIdentity);
        if (doc == null) {
            return null;
        }
        String id = text(doc.get("cognitoIdentityId"));
        String pool = text(doc.get("cognitoIdentityPoolId"));
        return new CognitoIdentity() {
            @Override
            public String getIdentityId() {
                return id;
            }

            @Override
            public String getIdentityPoolId() {
                return pool;
            }
        };
    }

    @Override
    public ClientContext getClientContext() {
        Map<String, Object> doc = Json.parseObject(invocation.clientContext);
        if (doc == null) {
            return null;
        }
        Map<String, Object> client = object(doc.get("client"));
        Map<String, String> custom = strings(doc.get("custom"));
        Map<String, String> env = strings(doc.get("env"));
        Client app = client == null ? null : new Client() {
            @Override
            public String getInstallationId() {
                return text(client.get("installation_id"));
            }

            @Override
            public String getAppTitle() {
                return text(client.get("app_title"));
            }

            @Override
            public String getAppVersionName() {
                return text(client.get("app_version_name"));
            }

            @Override
            public String getAppVersionCode() {
                return text(client.get("app_version_code"));
            }

            @Override
            public String getAppPackageName() {
                return text(client.get("app_package_name"));
            }
        };
        return new ClientContext() {
            @Override
            public Client getClient() {
                return app;
            }

            @Override
            public Map<String, String> getCustom() {
                return custom;
            }

            @Override
            public Map<String, String> getEnvironment() {
                return env;
            }
        };
    }

    @Override
    public int getRemainingTimeInMillis() {
        long left = invocation.deadlineMs - System.currentTimeMillis();
        return (int) Math.max(0, Math.min(Integer.MAX_VALUE, left));
    }

    @Override
    public int getMemoryLimitInMB() {
        return function.memoryMb;
    }

    @Override
    public LambdaLogger getLogger() {
        return LambdaRuntime.getLogger();
    }

    private static String text(Object o) {
        return o == null ? null : o.toString();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Object o) {
        return o instanceof Map ? (Map<String, Object>) o : null;
    }

    private static Map<String, String> strings(Object o) {
        Map<String, Object> m = object(o);
        if (m == null) {
            return null;
        }
        Map<String, String> out = new java.util.LinkedHashMap<>();
        m.forEach((k, v) -> out.put(k, text(v)));
        return out;
    }
}
