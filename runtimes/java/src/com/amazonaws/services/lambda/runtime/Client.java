package com.amazonaws.services.lambda.runtime;

/** The client application, as a mobile SDK describes it. */
public interface Client {
    /** The id of this installation of the application. */
    String getInstallationId();

    /** The application's title. */
    String getAppTitle();

    /** The application's version name, e.g. {@code 1.2}. */
    String getAppVersionName();

    /** The application's version code, e.g. {@code 12}. */
    String getAppVersionCode();

    /** The application's package name. */
    String getAppPackageName();
}
