/* A minimal point-of-sale flow in C over libnami: open the in-process middleware, register the
 * terminal, take a payment of SAR 10.00, print the outcome, free everything.
 *
 * The JSON is exactly the REST API's (port 9099): an integration that talks HTTP today moves to
 * nami_call() without changing its bodies.
 *
 * Build (Linux; see README.md for Windows):
 *   cargo build --release -p nami-ffi
 *   gcc -std=c11 -Wall -Wextra -I nami-ffi/include examples/c/pos.c -L target/release -lnami -o pos
 *   LD_LIBRARY_PATH=target/release ./pos 192.168.1.100 2345 12345678
 *
 * Usage: pos <terminal-ip> <terminal-port> <cash-register-no> [state-dir]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nami.h"

/* Events arrive as JSON, possibly on another thread: show the cashier what is going on. */
static void on_event(const char *event_json, void *user_data) {
    (void)user_data;
    if (strstr(event_json, "\"waitingForCard\"") != NULL) printf("  terminal: present card\n");
}

/* Calls one endpoint; prints and frees the reply; returns whether it was NAMI_STATUS_OK and the
 * body contains `expect` (copied to `copy` when given). */
static int call(NamiClient *client, const char *endpoint, const char *body, const char *expect, char *copy,
                size_t copy_size) {
    char *reply = NULL;
    NamiStatus status = nami_call(client, endpoint, body, &reply);
    printf("%s -> status %d\n  %s\n", endpoint, (int)status, reply ? reply : "(none)");
    int ok = status == NAMI_STATUS_OK && reply != NULL && strstr(reply, expect) != NULL;
    if (!ok && status != NAMI_STATUS_OK) fprintf(stderr, "  error: %s\n", nami_last_error_message());
    if (copy != NULL && reply != NULL) snprintf(copy, copy_size, "%s", reply);
    nami_string_free(reply); /* every string the library returns is freed with nami_string_free */
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s <terminal-ip> <terminal-port> <cash-register-no> [state-dir]\n", argv[0]);
        return 2;
    }
    const char *ip = argv[1], *port = argv[2], *cash_register = argv[3];
    printf("libnami %s\n", nami_version());

    /* 1. The client: journal and registrations live in the state directory. */
    char options[512] = "{}";
    if (argc > 4) snprintf(options, sizeof options, "{\"stateDir\":\"%s\"}", argv[4]);
    NamiClient *client = NULL;
    if (nami_client_new(options, &client) != NAMI_STATUS_OK) {
        fprintf(stderr, "cannot open the client: %s\n", nami_last_error_message());
        return 1;
    }
    nami_set_event_callback(client, on_event, NULL);

    char body[512], reply[4096], ecr[32];
    int ok = 1;

    /* 2. REGISTER once per terminal (the service remembers it across restarts). */
    snprintf(body, sizeof body,
             "{\"tcpipcomData\":{\"ip\":\"%s\",\"port\":%s},"
             "\"paymentRequest\":{\"txnType\":\"REGISTER\",\"cashRegisterNo\":\"%s\",\"ecrReferenceNo\":\"%s000000\"}}",
             ip, port, cash_register, cash_register);
    ok &= call(client, "/performTransactionTCPIP", body, "\"statusCode\":\"200\"", NULL, 0);

    /* 3. A fresh ECR reference for the sale (never reuse one for a new sale). */
    snprintf(body, sizeof body, "{\"cashRegisterNo\":\"%s\"}", cash_register);
    ok &= call(client, "/nextEcrReference", body, "ecrReferenceNo", reply, sizeof reply);
    const char *at = strstr(reply, "\"ecrReferenceNo\":\"");
    snprintf(ecr, sizeof ecr, "%.14s", at ? at + strlen("\"ecrReferenceNo\":\"") : "");

    /* 4. PURCHASE of SAR 10.00. Blocks until the card is read; nami_cancel() from another thread
     *    ends the wait. If the reply says "outcomeUnknown":true, do NOT sell again with a new
     *    reference: retry with the same ecrReferenceNo, the service resolves it. */
    snprintf(body, sizeof body,
             "{\"tcpipcomData\":{\"ip\":\"%s\",\"port\":%s},"
             "\"paymentRequest\":{\"txnType\":\"PURCHASE\",\"amount\":\"10.00\",\"ecrReferenceNo\":\"%s\","
             "\"jsonResponse\":true}}",
             ip, port, ecr);
    ok &= call(client, "/performTransactionTCPIP", body, "\"approved\":true", NULL, 0);
    printf("payment %s: %s\n", ecr, ok ? "APPROVED" : "not approved");

    /* 5. Free the client (cancels running calls, stops background work). */
    nami_client_free(client);
    return ok ? 0 : 1;
}
