package com.amazonaws.services.lambda.runtime;

/**
 * A handler whose event and result are converted from and to JSON by the
 * runtime.
 *
 * @param <I> the event's type
 * @param <O> the result's type
 */
public interface RequestHandler<I, O> {
    /** Handle one event. */
    O handleRequest(I input, Context context);
}
