/* The C ABI of libnami against the simulator (nami-sim), as a POS written in C uses it.
 *
 * Usage: test_nami <sim-port> <card-tap-sim-port> <cash-register-no>
 *   sim-port           a nami-sim answering at once
 *   card-tap-sim-port  a nami-sim started with --card-tap (card transactions wait for a tap)
 *   cash-register-no   8 digits, different for every run against the same simulators
 *
 * Prints "N passed, N failed" last; exits 0 only when nothing failed. Run under valgrind by
 * bindings/c/run-tests.sh. */
#include "harness.h"

#include <pthread.h>

static int g_port, g_tap_port;
static const char *g_register;

/* A 14-digit ECR reference of this run. */
static const char *ecr(char *buf, int sequence) {
    return fmt(buf, 15, "%s%06d", g_register, sequence);
}

/* ---- events -------------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int count;
    int response_received;
    int waiting_for_card;
    int wrong_user_data;
    int done; /* the call the canceller watches has returned */
} Events;

static void events_init(Events *e) {
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->changed, NULL);
}

static void events_destroy(Events *e) {
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->changed);
}

static Events *g_expected_events;

static void on_event(const char *event_json, void *user_data) {
    Events *e = (Events *)user_data;
    if (e != g_expected_events) {
        /* Counted by the test that owns g_expected_events. */
        if (g_expected_events != NULL) g_expected_events->wrong_user_data++;
        return;
    }
    pthread_mutex_lock(&e->lock);
    e->count++;
    if (has(event_json, "\"event\":\"responseReceived\"")) e->response_received++;
    if (has(event_json, "\"event\":\"waitingForCard\"")) e->waiting_for_card++;
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
}

static void events_done(Events *e) {
    pthread_mutex_lock(&e->lock);
    e->done = 1;
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
}

/* Waits up to `seconds` for a waitingForCard event (or the end of the call); returns whether
 * the event came. */
static int wait_for_card_wait(Events *e, int seconds) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    pthread_mutex_lock(&e->lock);
    int rc = 0;
    while (e->waiting_for_card == 0 && !e->done && rc == 0) rc = pthread_cond_timedwait(&e->changed, &e->lock, &deadline);
    int seen = e->waiting_for_card > 0;
    pthread_mutex_unlock(&e->lock);
    return seen;
}

/* ---- client helpers ------------------------------------------------------------------------ */

static NamiClient *open_client(const char *state_dir) {
    char options[512];
    fmt(options, sizeof options,
        "{\"stateDir\":\"%s\",\"timeouts\":{\"cardPresentSeconds\":90,\"settlementSeconds\":90,"
        "\"adminSeconds\":90},\"recoveryIntervalSeconds\":3600,\"restoreConnections\":false}",
        state_dir);
    NamiClient *client = (NamiClient *)(uintptr_t)1; /* must be overwritten */
    NamiStatus status = nami_client_new(options, &client);
    CHECK(status == NAMI_STATUS_OK);
    CHECK(client != NULL && client != (NamiClient *)(uintptr_t)1);
    return status == NAMI_STATUS_OK ? client : NULL;
}

/* POST /performTransactionTCPIP with `payment` (the paymentRequest object) to `port`; returns
 * the body (free with nami_string_free). */
static char *pay(NamiClient *client, int port, const char *payment, NamiStatus *status) {
    char body[1024];
    fmt(body, sizeof body, "{\"tcpipcomData\":{\"ip\":\"127.0.0.1\",\"port\":%d},\"paymentRequest\":%s}", port,
        payment);
    char *reply = NULL;
    *status = nami_call(client, "/performTransactionTCPIP", body, &reply);
    return reply;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_version(void) {
    CHECK(nami_abi_version() == NAMI_ABI_VERSION);
    const char *version = nami_version();
    CHECK(version != NULL && strlen(version) >= 5 && version[0] >= '0' && version[0] <= '9');
    CHECK(nami_last_error_message() != NULL);
}

/* The seeds' whole sequence through nami_call, with the REST bodies unchanged. */
static void test_rest_sequence(void) {
    char dir[64], payment[512], ref[16], prev[16];
    NamiStatus status;
    make_temp_dir(dir, sizeof dir);
    NamiClient *client = open_client(dir);
    if (client == NULL) return;
    Events events;
    events_init(&events);
    g_expected_events = &events;
    CHECK(nami_set_event_callback(client, on_event, &events) == NAMI_STATUS_OK);

    char *reply = pay(client, g_port, fmt(payment, sizeof payment,
                      "{\"txnType\":\"REGISTER\",\"ecrReferenceNo\":\"%s\"}", ecr(ref, 0)), &status);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"statusCode\":\"200\"") && has(reply, "\"terminalId\":\"8184000200000077\""), reply);
    nami_string_free(reply);

    /* PURCHASE, approved, parsed. */
    ecr(prev, 1);
    reply = pay(client, g_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"PURCHASE\",\"amount\":\"10.00\",\"ecrReferenceNo\":\"%s\",\"jsonResponse\":true}",
                prev), &status);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"approved\":true") && has(reply, "\"responseCode\":\"000\""), reply);
    CHECK_TEXT(has(reply, "\"cardNumber\":\"588845******1234\""), reply);
    CHECK_TEXT(has(reply, "\"amount\":\"SAR 10.00\""), reply);
    nami_string_free(reply);

    /* The same ECR reference again: the stored result, nothing sent. */
    reply = pay(client, g_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"PURCHASE\",\"amount\":\"10.00\",\"ecrReferenceNo\":\"%s\"}", prev), &status);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"replay\":true") && has(reply, "\"approved\":true"), reply);
    nami_string_free(reply);

    /* A declined purchase is still NAMI_STATUS_OK: the terminal answered. */
    reply = pay(client, g_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"PURCHASE\",\"amount\":\"10.51\",\"ecrReferenceNo\":\"%s\"}", ecr(ref, 2)), &status);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"approved\":false") && has(reply, "\"responseCode\":\"116\""), reply);
    nami_string_free(reply);

    /* DUPLICATE of the first purchase. */
    reply = pay(client, g_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"DUPLICATE\",\"prevEcrNo\":\"%s\",\"ecrReferenceNo\":\"%s\",\"jsonResponse\":true}",
                prev, ecr(ref, 3)), &status);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"statusCode\":\"200\"") && has(reply, "\"approved\":true"), reply);
    nami_string_free(reply);

    /* A new purchase, then REVERSAL of it. */
    reply = pay(client, g_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"PURCHASE\",\"amount\":\"2.00\",\"ecrReferenceNo\":\"%s\"}", ecr(ref, 4)), &status);
    CHECK_TEXT(status == NAMI_STATUS_OK && has(reply, "\"approved\":true"), reply);
    nami_string_free(reply);
    reply = pay(client, g_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"REVERSAL\",\"ecrReferenceNo\":\"%s\",\"jsonResponse\":true}", ecr(ref, 5)), &status);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"statusCode\":\"200\"") && has(reply, "\"responseCode\":\"400\""), reply);
    nami_string_free(reply);

    /* RECONCILIATION. */
    reply = pay(client, g_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"RECONCILIATION\",\"ecrReferenceNo\":\"%s\",\"jsonResponse\":true}", ecr(ref, 6)),
                &status);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"statusCode\":\"200\"") && has(reply, "\"responseCode\":\"500\""), reply);
    nami_string_free(reply);

    /* Other endpoints: registration status (query string), COM ports, the journal. */
    char path[128];
    reply = NULL;
    status = nami_call(client, fmt(path, sizeof path, "/registrationStatus?ip=127.0.0.1&port=%d", g_port), NULL, &reply);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"registered\":true"), reply);
    nami_string_free(reply);
    reply = NULL;
    CHECK(nami_call(client, "/get-com-ports", "", &reply) == NAMI_STATUS_OK);
    CHECK_TEXT(reply != NULL && reply[0] == '[', reply);
    nami_string_free(reply);
    reply = NULL;
    CHECK(nami_call(client, fmt(path, sizeof path, "/transactions/%s", prev), NULL, &reply) == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"count\":1") && has(reply, "\"state\":\"approved\""), reply);
    nami_string_free(reply);
    reply = NULL;
    CHECK(nami_call(client, "/transactions/99999999999999", NULL, &reply) == NAMI_STATUS_NOT_FOUND);
    nami_string_free(reply);

    /* Events arrived, with our user_data. */
    pthread_mutex_lock(&events.lock);
    CHECK(events.count > 0);
    CHECK(events.response_received >= 5);
    CHECK(events.wrong_user_data == 0);
    pthread_mutex_unlock(&events.lock);

    CHECK(nami_set_event_callback(client, NULL, NULL) == NAMI_STATUS_OK);
    int before = events.count;
    reply = NULL;
    CHECK(nami_call(client, "/api/health-status", NULL, &reply) == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"unknownOutcomes\":0"), reply);
    nami_string_free(reply);
    CHECK(events.count == before);

    nami_client_free(client);
    g_expected_events = NULL;
    events_destroy(&events);
    remove_tree(dir);
}

/* The same operations through the typed terminal functions. */
static void test_typed_sequence(void) {
    char ref[16], first[16], rrn[32];
    NamiTerminal *terminal = NULL;
    NamiResult r;
    CHECK(nami_terminal_tcp_new("127.0.0.1", (uint16_t)g_port, "{\"timeouts\":{\"cardPresentSeconds\":90}}",
                                &terminal) == NAMI_STATUS_OK);
    if (terminal == NULL) return;
    Events events;
    events_init(&events);
    g_expected_events = &events;
    CHECK(nami_terminal_set_event_callback(terminal, on_event, &events) == NAMI_STATUS_OK);
    CHECK(nami_terminal_connect(terminal) == NAMI_STATUS_OK);

    CHECK(nami_terminal_register(terminal, g_register, &r) == NAMI_STATUS_OK);
    CHECK(r.approved == 1);
    CHECK_TEXT(has(r.response_code, "800"), r.response_code);
    CHECK_TEXT(has(r.terminal_id, "8184000200000077"), r.terminal_id);
    nami_result_free(&r);
    CHECK(r.response_code == NULL && r.terminal_id == NULL);
    nami_result_free(&r); /* twice is fine */

    ecr(first, 11);
    CHECK(nami_terminal_purchase(terminal, "10.00", first, 1, &r) == NAMI_STATUS_OK);
    CHECK(r.approved == 1);
    CHECK_TEXT(has(r.response_code, "000") && has(r.txn_type, "PURCHASE"), r.response_code);
    CHECK_TEXT(has(r.masked_pan, "588845******1234"), r.masked_pan);
    CHECK_TEXT(r.rrn != NULL && strlen(r.rrn) == 12, r.rrn);
    CHECK_TEXT(r.approval_code != NULL && strlen(r.approval_code) == 6, r.approval_code);
    CHECK_TEXT(has(r.ecr_reference, first), r.ecr_reference);
    CHECK_TEXT(r.signature != NULL && strlen(r.signature) == 64, r.signature);
    CHECK_TEXT(has(r.raw_json, "\"approved\":true") && has(r.raw_json, "\"cardNumber\""), r.raw_json);
    CHECK(r.unknown_outcome_ecr_reference == NULL);
    snprintf(rrn, sizeof rrn, "%s", r.rrn ? r.rrn : "");
    nami_result_free(&r);

    /* Declined: OK, approved 0. */
    CHECK(nami_terminal_purchase(terminal, "10.51", ecr(ref, 12), 0, &r) == NAMI_STATUS_OK);
    CHECK(r.approved == 0);
    CHECK_TEXT(has(r.response_code, "116"), r.response_code);
    nami_result_free(&r);

    CHECK(nami_terminal_refund(terminal, "4.00", rrn, NULL, NULL, ecr(ref, 13), 1, &r) == NAMI_STATUS_OK);
    CHECK_TEXT(r.approved == 1, r.raw_json);
    nami_result_free(&r);

    CHECK(nami_terminal_purchase(terminal, "2.00", ecr(ref, 14), 1, &r) == NAMI_STATUS_OK);
    CHECK(r.approved == 1);
    nami_result_free(&r);
    CHECK(nami_terminal_reversal(terminal, ecr(ref, 15), 1, &r) == NAMI_STATUS_OK);
    CHECK_TEXT(r.approved == 1 && has(r.response_code, "400"), r.raw_json);
    nami_result_free(&r);

    CHECK(nami_terminal_duplicate(terminal, first, ecr(ref, 16), &r) == NAMI_STATUS_OK);
    CHECK_TEXT(r.approved == 1, r.raw_json);
    nami_result_free(&r);

    CHECK(nami_terminal_reconciliation(terminal, ecr(ref, 17), 1, &r) == NAMI_STATUS_OK);
    CHECK_TEXT(r.approved == 1 && has(r.response_code, "500"), r.raw_json);
    nami_result_free(&r);

    /* Any type through a paymentRequest body. */
    char body[256];
    CHECK(nami_terminal_transact(terminal, fmt(body, sizeof body,
          "{\"txnType\":\"CHECK_STATUS\",\"ecrReferenceNo\":\"%s\"}", ecr(ref, 18)), &r) == NAMI_STATUS_OK);
    CHECK_TEXT(has(r.response_code, "000"), r.raw_json);
    nami_result_free(&r);

    pthread_mutex_lock(&events.lock);
    CHECK(events.response_received >= 8);
    pthread_mutex_unlock(&events.lock);
    CHECK(nami_terminal_disconnect(terminal) == NAMI_STATUS_OK);
    nami_terminal_free(terminal);
    g_expected_events = NULL;
    events_destroy(&events);
}

/* ---- cancel from a second thread ----------------------------------------------------------- */

typedef struct {
    Events *events;
    NamiClient *client;
    NamiTerminal *terminal;
    NamiStatus status;
    int saw_card_wait;
} Canceller;

static void *cancel_when_card_waits(void *arg) {
    Canceller *c = (Canceller *)arg;
    c->saw_card_wait = wait_for_card_wait(c->events, 120);
    c->status = c->client != NULL ? nami_cancel(c->client) : nami_terminal_cancel(c->terminal);
    return NULL;
}

static void test_cancel_client_from_another_thread(void) {
    char dir[64], payment[512], ref[16];
    NamiStatus status;
    make_temp_dir(dir, sizeof dir);
    NamiClient *client = open_client(dir);
    if (client == NULL) return;
    Events events;
    events_init(&events);
    g_expected_events = &events;
    CHECK(nami_set_event_callback(client, on_event, &events) == NAMI_STATUS_OK);
    /* As below: the simulator may still be busy with a purchase another run abandoned. */
    char *reply = NULL;
    int registered = 0;
    for (int attempt = 0; attempt < 100 && !registered; attempt++) {
        reply = pay(client, g_tap_port, fmt(payment, sizeof payment,
                    "{\"txnType\":\"REGISTER\",\"ecrReferenceNo\":\"%s\"}", ecr(ref, 20)), &status);
        registered = status == NAMI_STATUS_OK && has(reply, "\"approved\":true");
        nami_string_free(reply);
        if (!registered) sleep_ms(100);
    }
    CHECK(registered);

    Canceller canceller = {&events, client, NULL, NAMI_STATUS_INTERNAL, 0};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, cancel_when_card_waits, &canceller) == 0);
    double start = now_seconds();
    reply = pay(client, g_tap_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"PURCHASE\",\"amount\":\"10.00\",\"ecrReferenceNo\":\"%s\"}", ecr(ref, 21)), &status);
    double elapsed = now_seconds() - start;
    events_done(&events);
    pthread_join(thread, NULL);
    CHECK(canceller.saw_card_wait);
    CHECK(canceller.status == NAMI_STATUS_OK);
    CHECK(status == NAMI_STATUS_OK); /* the service answered; the body says CANCELLED */
    CHECK_TEXT(has(reply, "\"statusCode\":\"CANCELLED\""), reply);
    CHECK_TEXT(has(reply, "\"outcomeUnknown\":true") && has(reply, ref), reply);
    CHECK(elapsed < 60.0);
    nami_string_free(reply);

    nami_client_free(client);
    g_expected_events = NULL;
    events_destroy(&events);
    remove_tree(dir);
}

static void test_cancel_terminal_from_another_thread(void) {
    char ref[16];
    NamiTerminal *terminal = NULL;
    NamiResult r;
    CHECK(nami_terminal_tcp_new("127.0.0.1", (uint16_t)g_tap_port, NULL, &terminal) == NAMI_STATUS_OK);
    if (terminal == NULL) return;
    Events events;
    events_init(&events);
    g_expected_events = &events;
    CHECK(nami_terminal_set_event_callback(terminal, on_event, &events) == NAMI_STATUS_OK);
    /* The simulator may still be finishing the purchase abandoned by the previous test: it
     * answers 923 (request in progress) until it notices the hang-up. Retry, as a POS would. */
    int registered = 0;
    for (int attempt = 0; attempt < 100 && !registered; attempt++) {
        NamiStatus status = nami_terminal_register(terminal, g_register, &r);
        registered = status == NAMI_STATUS_OK && r.approved;
        nami_result_free(&r);
        if (!registered) sleep_ms(100);
    }
    CHECK(registered);

    Canceller canceller = {&events, NULL, terminal, NAMI_STATUS_INTERNAL, 0};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, cancel_when_card_waits, &canceller) == 0);
    double start = now_seconds();
    NamiStatus status = nami_terminal_purchase(terminal, "10.00", ecr(ref, 22), 1, &r);
    double elapsed = now_seconds() - start;
    events_done(&events);
    pthread_join(thread, NULL);
    CHECK(canceller.saw_card_wait);
    CHECK(canceller.status == NAMI_STATUS_OK);
    CHECK(status == NAMI_STATUS_CANCELLED);
    CHECK(has(nami_last_error_message(), "CANCELLED"));
    CHECK(r.approved == 0 && r.response_code == NULL);
    CHECK_TEXT(has(r.unknown_outcome_ecr_reference, ref), r.unknown_outcome_ecr_reference);
    CHECK_TEXT(has(r.message, "CANCELLED"), r.message);
    CHECK(elapsed < 60.0);
    nami_result_free(&r);

    nami_terminal_free(terminal);
    g_expected_events = NULL;
    events_destroy(&events);
}

/* ---- bad input ----------------------------------------------------------------------------- */

static const char BAD_UTF8[] = {'{', '"', (char)0xff, (char)0xfe, '"', '}', 0};

static void test_bad_input(void) {
    char dir[64], payment[512], ref[16];
    NamiStatus status;
    char *reply = NULL;

    /* NULL everywhere. */
    CHECK(nami_client_new(NULL, NULL) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "`out`"));
    CHECK(nami_call(NULL, "/get-com-ports", NULL, NULL) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(nami_call(NULL, "/get-com-ports", NULL, &reply) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK_TEXT(has(reply, "\"statusCode\":\"ERROR\"") && has(reply, "client"), reply);
    nami_string_free(reply);
    CHECK(nami_cancel(NULL) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(nami_set_event_callback(NULL, on_event, NULL) == NAMI_STATUS_INVALID_ARGUMENT);
    nami_client_free(NULL);
    nami_string_free(NULL);
    nami_result_free(NULL);
    nami_terminal_free(NULL);
    NamiResult r;
    CHECK(nami_terminal_purchase(NULL, "10.00", "12345678000001", 1, &r) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK_TEXT(has(r.message, "terminal"), r.message);
    nami_result_free(&r);
    CHECK(nami_terminal_purchase(NULL, "10.00", "12345678000001", 1, NULL) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(nami_terminal_cancel(NULL) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(nami_terminal_connect(NULL) == NAMI_STATUS_INVALID_ARGUMENT);
    NamiTerminal *terminal = (NamiTerminal *)(uintptr_t)1;
    CHECK(nami_terminal_tcp_new(NULL, 1, NULL, &terminal) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(terminal == NULL);
    CHECK(nami_terminal_tcp_new("127.0.0.1", 0, NULL, &terminal) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "port"));
    CHECK(nami_terminal_serial_new("/dev/null", 12345, 0, 8, 1, NULL, &terminal) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "baudRate"));
    CHECK(nami_terminal_serial_new("/dev/null", 115200, 7, 8, 1, NULL, &terminal) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "parity"));

    /* Options: invalid UTF-8, bad JSON, unknown key, bad value. */
    NamiClient *client = (NamiClient *)(uintptr_t)1;
    CHECK(nami_client_new(BAD_UTF8, &client) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(client == NULL);
    CHECK(has(nami_last_error_message(), "UTF-8"));
    CHECK(nami_client_new("{\"stateDir\":", &client) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "options_json"));
    CHECK(nami_client_new("{\"colour\":\"blue\"}", &client) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "colour"));
    CHECK(nami_client_new("{\"timeouts\":{\"cardPresentSeconds\":-1}}", &client) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "timeouts.cardPresentSeconds"));

    make_temp_dir(dir, sizeof dir);
    client = open_client(dir);
    if (client == NULL) return;

    /* Unknown endpoint, NULL endpoint, invalid UTF-8 body, bad JSON body, wrong shape. */
    reply = NULL;
    CHECK(nami_call(client, "/no/such/endpoint", NULL, &reply) == NAMI_STATUS_NOT_FOUND);
    CHECK_TEXT(has(reply, "Unknown endpoint"), reply);
    CHECK(has(nami_last_error_message(), "Unknown endpoint"));
    nami_string_free(reply);
    reply = NULL;
    CHECK(nami_call(client, NULL, NULL, &reply) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK_TEXT(has(reply, "endpoint"), reply);
    nami_string_free(reply);
    reply = NULL;
    CHECK(nami_call(client, "/performTransactionTCPIP", BAD_UTF8, &reply) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK_TEXT(has(reply, "UTF-8"), reply);
    nami_string_free(reply);
    reply = NULL;
    CHECK(nami_call(client, "/performTransactionTCPIP", "{\"tcpipcomData\":", &reply) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK_TEXT(has(reply, "JSON"), reply);
    nami_string_free(reply);
    reply = NULL;
    CHECK(nami_call(client, "/performTransactionTCPIP", "{\"tcpipcomData\":{\"ip\":\"127.0.0.1\",\"port\":99999}}",
                    &reply) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK_TEXT(has(reply, "port"), reply);
    nami_string_free(reply);

    /* A bad amount: the service answers INVALID_AMOUNT naming the field; nothing is sent. */
    reply = pay(client, g_port, fmt(payment, sizeof payment,
                "{\"txnType\":\"PURCHASE\",\"amount\":\"10.005\",\"ecrReferenceNo\":\"%s\"}", ecr(ref, 30)), &status);
    CHECK(status == NAMI_STATUS_OK);
    CHECK_TEXT(has(reply, "\"statusCode\":\"INVALID_AMOUNT\"") && has(reply, "`amount`"), reply);
    nami_string_free(reply);
    nami_client_free(client);
    remove_tree(dir);

    /* The typed functions: bad amount, bad ECR reference, bad UTF-8, NULL strings. */
    CHECK(nami_terminal_tcp_new("127.0.0.1", (uint16_t)g_port, NULL, &terminal) == NAMI_STATUS_OK);
    CHECK(nami_terminal_purchase(terminal, "10.005", ecr(ref, 31), 1, &r) == NAMI_STATUS_INVALID_AMOUNT);
    CHECK(has(nami_last_error_message(), "`amount`"));
    CHECK(field_is("amount"));
    CHECK_TEXT(has(r.message, "`amount`"), r.message);
    nami_result_free(&r);
    CHECK(nami_terminal_purchase(terminal, "-1", ecr(ref, 31), 1, &r) == NAMI_STATUS_INVALID_AMOUNT);
    nami_result_free(&r);
    CHECK(nami_terminal_purchase(terminal, "10.00", "123", 1, &r) == NAMI_STATUS_INVALID_ECR_REF);
    CHECK(has(nami_last_error_message(), "ecrReferenceNo"));
    CHECK(field_is("ecrReferenceNo"));
    nami_result_free(&r);
    CHECK(nami_terminal_purchase(terminal, BAD_UTF8, ecr(ref, 31), 1, &r) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "UTF-8"));
    nami_result_free(&r);
    CHECK(nami_terminal_purchase(terminal, NULL, ecr(ref, 31), 1, &r) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(field_is("amount"));
    nami_result_free(&r);
    CHECK(nami_terminal_register(terminal, "12", &r) == NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "cashRegisterNo"));
    CHECK(field_is("cashRegisterNo"));
    nami_result_free(&r);
    CHECK(nami_terminal_refund(terminal, "1.00", NULL, NULL, NULL, ecr(ref, 31), 1, &r) ==
          NAMI_STATUS_INVALID_ARGUMENT);
    CHECK(has(nami_last_error_message(), "rrnNumber"));
    nami_result_free(&r);
    CHECK(nami_terminal_transact(terminal, "{\"txnType\":\"PURCHASE\",\"amount\":\"1.001\",\"ecrReferenceNo\":\"12345678000001\"}",
                                 &r) == NAMI_STATUS_INVALID_AMOUNT);
    nami_result_free(&r);
    CHECK(nami_terminal_transact(terminal, "[1,2", &r) == NAMI_STATUS_INVALID_ARGUMENT);
    nami_result_free(&r);
    nami_terminal_free(terminal);

    /* An unreachable terminal. */
    CHECK(nami_terminal_tcp_new("127.0.0.1", 1, "{\"timeouts\":{\"adminSeconds\":5}}", &terminal) == NAMI_STATUS_OK);
    CHECK(nami_terminal_connect(terminal) == NAMI_STATUS_UNABLE_TO_CONNECT);
    CHECK(nami_terminal_register(terminal, g_register, &r) == NAMI_STATUS_UNABLE_TO_CONNECT);
    nami_result_free(&r);
    nami_terminal_free(terminal);
}

/* ---- threads ------------------------------------------------------------------------------- */

typedef struct {
    NamiClient *client;
    int index;
    int ok;
} Worker;

/* Each thread fails in its own way and sees only its own message; calls run in parallel. */
static void *worker(void *arg) {
    Worker *w = (Worker *)arg;
    char key[32], options[64];
    NamiClient *none = NULL;
    fmt(key, sizeof key, "thread%dkey", w->index);
    fmt(options, sizeof options, "{\"%s\":1}", key);
    int ok = 1;
    for (int i = 0; i < 20; i++) {
        ok &= nami_client_new(options, &none) == NAMI_STATUS_INVALID_ARGUMENT;
        char *reply = NULL;
        ok &= nami_call(w->client, "/getExistingConnections", NULL, &reply) == NAMI_STATUS_OK;
        ok &= reply != NULL && reply[0] == '{';
        nami_string_free(reply);
        ok &= has(nami_last_error_message(), key);
    }
    w->ok = ok;
    return NULL;
}

static void test_threads(void) {
    char dir[64];
    make_temp_dir(dir, sizeof dir);
    NamiClient *client = open_client(dir);
    if (client == NULL) return;
    Worker workers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (Worker){client, i, 0};
        CHECK(pthread_create(&threads[i], NULL, worker, &workers[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK(workers[i].ok);
    }
    nami_client_free(client);
    remove_tree(dir);
}

int main(int argc, char **argv) {
    if (argc != 4 || strlen(argv[3]) != 8) {
        fprintf(stderr, "usage: %s <sim-port> <card-tap-sim-port> <8-digit cash register no>\n", argv[0]);
        return 2;
    }
    g_port = atoi(argv[1]);
    g_tap_port = atoi(argv[2]);
    g_register = argv[3];
    setvbuf(stdout, NULL, _IONBF, 0);

    struct {
        const char *name;
        void (*run)(void);
    } tests[] = {
        {"version", test_version},
        {"bad input", test_bad_input},
        {"REST sequence through nami_call", test_rest_sequence},
        {"typed terminal sequence", test_typed_sequence},
        {"nami_cancel from a second thread", test_cancel_client_from_another_thread},
        {"nami_terminal_cancel from a second thread", test_cancel_terminal_from_another_thread},
        {"threads", test_threads},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int failed_before = g_failed;
        double start = now_seconds();
        tests[i].run();
        printf("  %-45s %s (%.1f s)\n", tests[i].name, g_failed == failed_before ? "ok" : "FAILED",
               now_seconds() - start);
    }
    return finish(argv[0]);
}
