package com.amazonaws.services.lambda.runtime;

import com.amazonaws.services.lambda.runtime.logging.LogLevel;

/** Writes to the function's log; each call is one log record. */
public interface LambdaLogger {
    /** Log a message. */
    void log(String message);

    /** Log a message given as (UTF-8) bytes. */
    void log(byte[] message);

    /** Log a message at a level; the level is ignored where logs are plain text. */
    default void log(String message, LogLevel logLevel) {
        log(message);
    }

    /** Log bytes at a level; the level is ignored where logs are plain text. */
    default void log(byte[] message, LogLevel logLevel) {
        log(message);
    }
}
