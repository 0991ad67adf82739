package com.amazonaws.services.lambda.runtime;

/**
 * What a handler learns about the invocation it is serving and the function
 * it belongs to (the API of aws-lambda-java-core, so code written for AWS
 * Lambda compiles and runs unchanged).
 */
public interface Context {
    /** The request id of this invocation. */
    String getAwsRequestId();

    /** The CloudWatch log group, {@code /aws/lambda/NAME}. */
    String getLogGroupName();

    /** The log stream of this execution environment. */
    String getLogStreamName();

    /** The function's name. */
    String getFunctionName();

    /** The version that runs, {@code $LATEST} until versions are published. */
    String getFunctionVersion();

    /** The ARN the caller used to invoke the function. */
    String getInvokedFunctionArn();

    /** The Amazon Cognito identity of the caller, or null. */
    CognitoIdentity getIdentity();

    /** The client context a mobile SDK sent, or null. */
    ClientContext getClientContext();

    /** Milliseconds left before the invocation times out. */
    int getRemainingTimeInMillis();

    /** The function's memory size in MB. */
    int getMemoryLimitInMB();

    /** A logger writing to the function's log. */
    LambdaLogger getLogger();
}
