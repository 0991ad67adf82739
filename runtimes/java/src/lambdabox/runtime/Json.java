package lambdabox.runtime;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.lang.reflect.Type;
import java.util.Map;

/**
 * Events and results as JSON, through Debian's Jackson. A class of its own so
 * that Jackson is loaded only by functions that need it: stream handlers never
 * pay for it at cold start.
 *
 * <p>Configured the way Lambda's Java runtime treats POJOs: property names
 * match in any case, unknown properties are ignored, and beans without
 * properties serialize as {@code {}}. Nulls are kept, in maps and in beans.
 */
final class Json {
    private Json() {}

    static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(MapperFeature.ACCEPT_CASE_INSENSITIVE_PROPERTIES)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .disable(SerializationFeature.FAIL_ON_EMPTY_BEANS)
            .build();

    /** Jackson's view of a handler parameter's (generic) type. */
    static JavaType type(Type type) {
        return MAPPER.getTypeFactory().constructType(type);
    }

    /** The event type of a {@link com.amazonaws.services.lambda.runtime.RequestHandler} class. */
    static JavaType requestHandlerInput(Class<?> handlerClass) {
        JavaType[] params = MAPPER.getTypeFactory()
                .constructType(handlerClass)
                .findTypeParameters(com.amazonaws.services.lambda.runtime.RequestHandler.class);
        return params.length > 0 ? params[0] : type(Object.class);
    }

    /** A reader for {@code type}; its deserializer is built here, once (the mapper caches it). */
    static ObjectReader reader(JavaType type) {
        return MAPPER.readerFor(type);
    }

    /** Exercise reading and writing once, so that their classes are loaded and initialised. */
    static void warmUp() throws IOException {
        write(MAPPER.readValue("{\"s\":\"x\",\"n\":[1,2.5,true,null,{}]}", Object.class));
    }

    static byte[] write(Object value) throws IOException {
        return MAPPER.writeValueAsBytes(value);
    }

    /** A JSON object from a header, or null when absent or not an object. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> parseObject(String json) {
        if (json == null || json.isBlank()) {
            return null;
        }
        try {
            Object value = MAPPER.readValue(json, Object.class);
            return value instanceof Map ? (Map<String, Object>) value : null;
        } catch (IOException e) {
            return null;
        }
    }
}
