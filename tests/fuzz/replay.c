/* Replays a fuzz corpus through a target without libFuzzer, so that
 * `make check` reruns every stored input (and every fixed crash) under the
 * ordinary compiler and the sanitizer build. Prints TAP: "1..N", then
 * "ok I - file" per input. A crash aborts the program, which the TAP
 * driver reports; a file that cannot be read is "not ok". */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define REPLAY_MAX_FILES 4096
#define REPLAY_MAX_INPUT (1 << 20)

static int
cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one file; returns 0 or -1 if it could not be read. */
static int
run_file(const char *dir, const char *name)
{
    static uint8_t buf[REPLAY_MAX_INPUT];
    char path[4096];
    FILE *f;
    size_t len;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        return -1;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    len = fread(buf, 1, sizeof(buf), f);
    if (ferror(f)) {
        (void)fclose(f);
        return -1;
    }
    (void)fclose(f);
    (void)LLVMFuzzerTestOneInput(buf, len);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : CORPUS_DIR;
    static char *names[REPLAY_MAX_FILES];
    size_t n = 0;
    int failed = 0;
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL) {
        printf("1..1\nnot ok 1 - corpus %s not found\n", dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL && n < REPLAY_MAX_FILES) {
        if (e->d_name[0] != '.') {
            names[n] = strdup(e->d_name);
            if (names[n] == NULL) {
                break;
            }
            n++;
        }
    }
    (void)closedir(d);
    qsort(names, n, sizeof(names[0]), cmp);
    printf("1..%zu\n", n);
    for (size_t i = 0; i < n; i++) {
        if (run_file(dir, names[i]) == 0) {
            printf("ok %zu - %s\n", i + 1, names[i]);
        } else {
            printf("not ok %zu - %s: cannot read\n", i + 1, names[i]);
            failed = 1;
        }
        (void)fflush(stdout);
        free(names[i]);
    }
    return failed;
}
