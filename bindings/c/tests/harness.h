/* A tiny test harness for the C tests of libnami: CHECK counts, helpers for JSON replies and
 * temporary state directories. C11 + POSIX; on Windows (mingw-w64, scripts/windows.sh) the
 * temporary directories use the Win32 API instead of mkdtemp and nftw. */
#ifndef NAMI_TEST_HARNESS_H
#define NAMI_TEST_HARNESS_H

#define _XOPEN_SOURCE 700
#ifdef _WIN32
#include <direct.h>
#include <io.h>
#include <windows.h>
#else
#include <ftw.h>
#endif
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

#ifdef _WIN32
/* A fresh directory under %TEMP%; remove it with remove_tree. */
static void make_temp_dir(char *out, size_t size) {
    char base[MAX_PATH];
    DWORD length = GetTempPathA(sizeof base, base);
    if (length == 0 || length >= sizeof base) {
        fprintf(stderr, "GetTempPathA failed\n");
        exit(2);
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(out, size, "%snami-c-test-%lu-%d", base, (unsigned long)GetCurrentProcessId(), attempt);
        /* Forward slashes: Windows takes them, and the path goes into JSON strings unescaped. */
        for (char *c = out; *c; c++) {
            if (*c == '\\') *c = '/';
        }
        if (_mkdir(out) == 0) return;
    }
    perror("_mkdir");
    exit(2);
}

/* Deletes a directory and everything in it (files and subdirectories). */
static void remove_tree(const char *path) {
    char pattern[MAX_PATH + 4];
    snprintf(pattern, sizeof pattern, "%s\\*", path);
    WIN32_FIND_DATAA entry;
    HANDLE found = FindFirstFileA(pattern, &entry);
    if (found != INVALID_HANDLE_VALUE) {
        do {
            if (strcmp(entry.cFileName, ".") == 0 || strcmp(entry.cFileName, "..") == 0) continue;
            char child[MAX_PATH + 4];
            snprintf(child, sizeof child, "%s\\%s", path, entry.cFileName);
            if (entry.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
                remove_tree(child);
            } else {
                DeleteFileA(child);
            }
        } while (FindNextFileA(found, &entry));
        FindClose(found);
    }
    RemoveDirectoryA(path);
}
#else
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
#endif

static int finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

#endif
