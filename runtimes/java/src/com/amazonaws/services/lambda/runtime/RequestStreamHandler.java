package com.amazonaws.services.lambda.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/** A handler that reads the raw event bytes and writes the raw result bytes. */
public interface RequestStreamHandler {
    /** Handle one event: read it from {@code input}, write the answer to {@code output}. */
    void handleRequest(InputStream input, OutputStream output, Context context) throws IOException;
}
