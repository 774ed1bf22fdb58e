/* tls-cost: the CPU one full TLS handshake costs pchatd's server side, and
 * the client's, measured in one thread over memory BIOs (no sockets, no
 * kernel), with the server context pchatd itself builds (src/net).
 *
 *   bench/tls-cost CERT KEY [HANDSHAKES]
 *   TICKETS=1 bench/tls-cost ...    with a session ticket (tls.session_tickets)
 *   KX=P-256 bench/tls-cost ...     the key exchange the client offers
 *
 * Each handshake is new (no resumption), TLS 1.3, then the server writes
 * one line and the client reads it (and the ticket, if any). Server time
 * counts SSL_new, the handshake, that write and SSL_free.
 * docs/benchmarks.md. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/net.h"

static double
cpu_seconds(void)
{
    struct timespec t;
    (void)clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Moves what one side wrote to the other side's input. */
static void
carry(SSL *from, SSL *to)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0) {
        (void)BIO_write(SSL_get_rbio(to), buf, n);
    }
}

static SSL *
new_end(SSL_CTX *ctx, int server)
{
    SSL *s = SSL_new(ctx);
    if (s == NULL) {
        return NULL;
    }
    SSL_set_bio(s, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    if (server) {
        SSL_set_accept_state(s);
    } else {
        SSL_set_connect_state(s);
    }
    return s;
}

/* One handshake; adds each side's CPU seconds. Returns 0 when done. */
static int
handshake(SSL_CTX *sctx, SSL_CTX *cctx, double *srv, double *cli)
{
    static const char line[] = ":n1 001 bench :Welcome\r\n";
    char got[64];
    double t0 = cpu_seconds();
    SSL *s = new_end(sctx, 1);
    *srv += cpu_seconds() - t0;
    SSL *c = new_end(cctx, 0);
    int sdone = 0, cdone = 0, rc = -1;

    if (s == NULL || c == NULL) {
        goto out;
    }
    for (int flight = 0; flight < 8 && !(sdone && cdone); flight++) {
        t0 = cpu_seconds();
        cdone = cdone || SSL_do_handshake(c) == 1;
        carry(c, s);
        *cli += cpu_seconds() - t0;
        t0 = cpu_seconds();
        sdone = sdone || SSL_do_handshake(s) == 1;
        carry(s, c);
        *srv += cpu_seconds() - t0;
    }
    if (sdone && cdone) {
        t0 = cpu_seconds();
        int w = SSL_write(s, line, (int)sizeof(line) - 1);
        carry(s, c);
        *srv += cpu_seconds() - t0;
        t0 = cpu_seconds();
        int r = SSL_read(c, got, (int)sizeof(got));
        *cli += cpu_seconds() - t0;
        rc = w > 0 && r == w ? 0 : -1;
    }
out:
    t0 = cpu_seconds();
    SSL_free(s);
    *srv += cpu_seconds() - t0;
    SSL_free(c);
    return rc;
}

int
main(int argc, char **argv)
{
    char err[512];
    const char *tickets = getenv("TICKETS");
    const char *kx = getenv("KX");
    long n = argc > 3 ? strtol(argv[3], NULL, 10) : 3000;
    double srv = 0, cli = 0;

    if (argc < 3 || n < 1) {
        fprintf(stderr, "usage: tls-cost CERT KEY [HANDSHAKES]\n");
        return 2;
    }
    SSL_CTX *sctx = pc_tls_server_ctx(argv[1], argv[2], err, sizeof(err));
    if (sctx == NULL) {
        fprintf(stderr, "tls-cost: %s\n", err);
        return 1;
    }
    pc_tls_set_tickets(sctx, tickets != NULL && tickets[0] == '1');
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    if (cctx == NULL
        || (kx != NULL && SSL_CTX_set1_groups_list(cctx, kx) != 1)) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    (void)SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
    /* A few untimed handshakes first: lazy initialisation and caches. */
    for (int i = 0; i < 50; i++) {
        double ignore_s = 0, ignore_c = 0;
        if (handshake(sctx, cctx, &ignore_s, &ignore_c) < 0) {
            fprintf(stderr, "tls-cost: handshake failed\n");
            ERR_print_errors_fp(stderr);
            return 1;
        }
    }
    for (long i = 0; i < n; i++) {
        if (handshake(sctx, cctx, &srv, &cli) < 0) {
            fprintf(stderr, "tls-cost: handshake %ld failed\n", i);
            ERR_print_errors_fp(stderr);
            return 1;
        }
    }
    printf("%ld handshakes (tickets %s, key exchange %s): server %.1f us, "
           "client %.1f us of CPU each; server alone: %.0f per second "
           "per core\n", n, tickets != NULL && tickets[0] == '1' ? "on" : "off",
           kx != NULL ? kx : "default", srv / (double)n * 1e6,
           cli / (double)n * 1e6, (double)n / srv);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
