"""`nami.Middleware` (the service in process) against `nami-sim`, with the REST paths and bodies."""

import json
import time

import pytest

import nami
from conftest import CASH_REGISTER, TERMINAL_ID, InThread


@pytest.fixture
def middleware(tmp_path):
    m = nami.Middleware.open(str(tmp_path / "state"), nami.MiddlewareOptions(restore_connections=False))
    yield m
    m.shutdown()


def tcp(sim, **payment_request):
    return json.dumps({"tcpipcomData": {"ip": sim.host, "port": sim.port}, "paymentRequest": payment_request})


def call(middleware, endpoint, body=None):
    return json.loads(middleware.call(endpoint, body))


def test_a_purchase_through_perform_transaction_tcpip(sim, middleware, refs):
    registered = call(middleware, "/performTransactionTCPIP", tcp(sim, txnType="REGISTER", cashRegisterNo=CASH_REGISTER))
    assert registered["statusCode"] == "200" and registered["terminalId"] == TERMINAL_ID

    reference = refs()
    sale = call(
        middleware,
        "/performTransactionTCPIP",
        tcp(sim, txnType="PURCHASE", amount="10.00", ecrReferenceNo=reference, jsonResponse=True),
    )
    assert sale["statusCode"] == "200" and sale["approved"] is True and sale["responseCode"] == "000"
    assert sale["parsedTransaction"]["cardNumber"] == "588845******1234"

    # The same reference again is the stored result, not a second charge.
    again = call(
        middleware,
        "/performTransactionTCPIP",
        tcp(sim, txnType="PURCHASE", amount="10.00", ecrReferenceNo=reference, jsonResponse=True),
    )
    assert again["replay"] is True
    assert len(sim.get("/journal")) == 1

    journal = json.loads(middleware.transactions(json.dumps({"state": "approved"})))
    assert journal["count"] == 1 and journal["transactions"][0]["ecrReferenceNo"] == reference
    assert json.loads(middleware.transaction(reference))["count"] == 1
    assert json.loads(middleware.transaction(refs()))["count"] == 0
    assert json.loads(middleware.transactions())["count"] == 1  # REGISTER is not journaled

    status = middleware.dispatch("/registrationStatus", json.dumps({"ip": sim.host, "port": sim.port}))
    assert status.status == 200 and json.loads(status.body)["registered"] is True
    assert middleware.dispatch("/no-such-endpoint").status == 404


def test_a_bad_journal_filter_is_invalid_input(middleware):
    with pytest.raises(nami.NamiError.InvalidInput) as raised:
        middleware.transactions(json.dumps({"state": "lost"}))
    assert "state" in raised.value.detail


def test_next_ecr_reference_gives_fresh_references(middleware):
    first = middleware.next_ecr_reference(CASH_REGISTER)
    second = middleware.next_ecr_reference(CASH_REGISTER)
    assert first.startswith(CASH_REGISTER) and len(first) == 14 and first != second
    with pytest.raises(nami.NamiError.InvalidInput):
        middleware.next_ecr_reference("1")


def test_cancel_from_another_thread_ends_the_call_and_the_listener_sees_it(sim, middleware, refs):
    events = []

    class Events(nami.EventListener):
        def on_event(self, terminal, event_json):
            events.append((terminal, json.loads(event_json)))

    assert middleware.cancel() is False  # nothing running
    middleware.set_listener(Events())
    call(middleware, "/performTransactionTCPIP", tcp(sim, txnType="REGISTER", cashRegisterNo=CASH_REGISTER))
    sim.card_tap(True)
    reference = refs()
    pending = InThread(
        lambda: call(middleware, "/performTransactionTCPIP", tcp(sim, txnType="PURCHASE", amount="10.00", ecrReferenceNo=reference))
    )
    sim.wait_for_card()
    started = time.monotonic()
    assert middleware.cancel() is True
    pending.join()
    assert pending.error is None
    assert pending.result["statusCode"] == "CANCELLED"
    assert pending.result["ecrReferenceNo"] == reference
    assert pending.ended_at - started < 2.0
    key = f"{sim.host}:{sim.port}"
    assert any(event["event"] == "waitingForCard" and terminal == key for terminal, event in events)
    middleware.set_listener(None)


def test_a_middleware_in_an_unusable_directory_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(nami.NamiError.Storage):
        nami.Middleware.open(str(blocker / "state"))
