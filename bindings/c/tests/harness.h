/* A tiny test harness for the C tests of libnami: CHECK counts, helpers for JSON replies and
 * temporary state directories. C11 + POSIX. */
#ifndef NAMI_TEST_HARNESS_H
#define NAMI_TEST_HARNESS_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nami.h"

static int g_passed = 0, g_failed = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            g_passed++;                                                                            \
        } else {                                                                                   \
            g_failed++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s\n  last error: %s\n", __FILE__, __LINE__, #cond,       \
                    nami_last_error_message());                                                    \
        }                                                                                          \
    } while (0)

/* CHECK with the JSON (or any text) that was looked at, printed on failure. */
#define CHECK_TEXT(cond, text)                                                                     \
    do {                                                                                           \
        if (cond) {                                                                                \
            g_passed++;                                                                            \
        } else {                                                                                   \
            g_failed++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s\n  text: %s\n  last error: %s\n", __FILE__, __LINE__,  \
                    #cond, (text) ? (text) : "(null)", nami_last_error_message());                 \
        }                                                                                          \
    } while (0)

static int has(const char *text, const char *needle) {
    return text != NULL && strstr(text, needle) != NULL;
}

/* Whether the last failure on this thread names `field` (nami_last_error_field). */
static int field_is(const char *field) {
    const char *named = nami_last_error_field();
    return named != NULL && strcmp(named, field) == 0;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* printf into a fixed buffer (the bodies here are small). */
static const char *fmt(char *buf, size_t size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(buf, size, format, args);
    va_end(args);
    return buf;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh directory under /tmp; remove it with remove_tree. */
static void make_temp_dir(char *out, size_t size) {
    snprintf(out, size, "/tmp/nami-c-test-XXXXXX");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

static void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

#endif
