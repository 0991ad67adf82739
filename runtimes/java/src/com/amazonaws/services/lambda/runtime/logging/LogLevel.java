package com.amazonaws.services.lambda.runtime.logging;

/** Log levels of Lambda's advanced logging controls. */
public enum LogLevel {
    UNDEFINED,
    TRACE,
    DEBUG,
    INFO,
    WARN,
    ERROR,
    FATAL;

    /** The level named {@code name} (any case); UNDEFINED for an unknown or null name. */
    public static LogLevel fromString(String name) {
        if (name != null) {
            for (LogLevel level : values()) {
                if (level.name().equalsIgnoreCase(name.trim())) {
                    return level;
                }
            }
        }
        return UNDEFINED;
    }
}
