/*
 * The native half of Prestart.java (the Java runtime started ahead of need):
 * reading the hand-off on descriptor 3, which Java has no way to open, and
 * replacing the C library's environment, which Java has no way to change
 * (a child process started without an environment of its own inherits that
 * one, not System.getenv's). Built at image build; loaded by Prestart only.
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HANDOFF_FD 3

/* Descriptor 3 read to its end, then closed; NULL on a read error. */
static char *read_all(size_t *size)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(HANDOFF_FD, buf + len, cap - len);
        if (n == 0) {
            close(HANDOFF_FD);
            *size = len;
            return buf;
        }
        if (n < 0) {
            break;
        }
        len += (size_t)n;
    }
    free(buf);
    close(HANDOFF_FD);
    return NULL;
}

/* The message's entries (after its 4-byte big-endian length), or NULL when
 * the length does not match what arrived or the last entry is not ended. */
JNIEXPORT jbyteArray JNICALL Java_lambdabox_Prestart_takeMessage(JNIEnv *env, jclass cls)
{
    (void)cls;
    size_t size = 0;
    char *data = read_all(&size);
    jbyteArray entries = NULL;
    if (data != NULL && size >= 4) {
        const unsigned char *b = (const unsigned char *)data;
        uint32_t declared = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        size_t body = size - 4;
        if (declared == body && (body == 0 || data[size - 1] == '\0')) {
            entries = (*env)->NewByteArray(env, (jsize)body);
            if (entries != NULL) {
                (*env)->SetByteArrayRegion(env, entries, 0, (jsize)body, (const jbyte *)(data + 4));
            }
        }
    }
    free(data);
    return entries;
}

/* Clear the environment and put each entry; the copy is kept for good, as
 * putenv keeps pointers into it. */
JNIEXPORT void JNICALL Java_lambdabox_Prestart_replaceEnvironment(JNIEnv *env, jclass cls, jbyteArray entries)
{
    (void)cls;
    jsize len = (*env)->GetArrayLength(env, entries);
    char *copy = malloc((size_t)len + 1);
    if (copy == NULL) {
        (*env)->ThrowNew(env, (*env)->FindClass(env, "java/lang/OutOfMemoryError"), "the function environment");
        return;
    }
    (*env)->GetByteArrayRegion(env, entries, 0, len, (jbyte *)copy);
    copy[len] = '\0';
    clearenv();
    for (char *p = copy; p < copy + len; p += strlen(p) + 1) {
        if (strchr(p, '=') != NULL) {
            putenv(p);
        }
    }
}
