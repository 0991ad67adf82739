package com.amazonaws.services.lambda.runtime;

import java.util.Map;

/** What a mobile SDK told the function about the client application. */
public interface ClientContext {
    /** The client application. */
    Client getClient();

    /** Values the application set. */
    Map<String, String> getCustom();

    /** Values the SDK set about the environment (platform, make, model, locale, …). */
    Map<String, String> getEnvironment();
}
