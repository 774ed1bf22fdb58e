/* Replays a fuzz corpus through a target without libFuzzer, so that
 * `make check` reruns every stored input (and every fixed crash) under the
 * ordinary compiler and the sanitizer build. Prints TAP. */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : CORPUS_DIR;
    DIR *d = opendir(dir);
    char *names[4096];
    size_t n = 0;
    struct dirent *e;

    if (d == NULL) {
        printf("1..1\nnot ok 1 - corpus %s not found\n", dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL && n < 4096) {
        if (e->d_name[0] != '.') {
            names[n++] = strdup(e->d_name);
        }
    }
    (void)closedir(d);
    qsort(names, n, sizeof(names[0]), cmp);
    printf("1..%zu\n", n);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        (void)snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            printf("not ok %zu - %s: cannot open\n", i + 1, names[i]);
            continue;
        }
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof(buf), f);
        (void)fclose(f);
        /* A crash aborts the program: the test driver reports it. */
        (void)LLVMFuzzerTestOneInput(buf, len);
        printf("ok %zu - %s\n", i + 1, names[i]);
        free(names[i]);
    }
    return 0;
}
