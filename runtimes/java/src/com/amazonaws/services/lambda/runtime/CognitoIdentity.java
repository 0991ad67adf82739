package com.amazonaws.services.lambda.runtime;

/** The Amazon Cognito identity that invoked the function through a mobile SDK. */
public interface CognitoIdentity {
    /** The identity id. */
    String getIdentityId();

    /** The identity pool id. */
    String getIdentityPoolId();
}
