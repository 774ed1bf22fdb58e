/* pchat-conf-doc: prints the configuration reference from the key table,
 * so that docs/config.md, pchatd.conf(5) and the example file never drift
 * from the code. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "util/conf.h"

int
main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--markdown") == 0) {
        pc_conf_doc_markdown(stdout);
    } else if (argc == 2 && strcmp(argv[1], "--man") == 0) {
        pc_conf_doc_man(stdout);
    } else if (argc == 2 && strcmp(argv[1], "--example") == 0) {
        pc_conf_doc_example(stdout);
    } else {
        (void)fprintf(stderr, "usage: pchat-conf-doc --markdown|--man|--example\n");
        return 2;
    }
    return 0;
}
