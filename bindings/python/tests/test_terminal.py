"""`nami.Terminal` against `nami-sim`: the whole sequence, declines, cancel from another thread,
busy, every typed error, the event listener and the log hook."""

import json
import threading
import time
from datetime import timedelta

import pytest

import nami
from conftest import CASH_REGISTER, TERMINAL_ID, InThread, closed_port, quick_config


def test_the_whole_sequence_runs_register_to_end_of_day(terminal, refs):
    registered = terminal.register(CASH_REGISTER)
    assert registered.approved and registered.txn_type == "REGISTER"
    assert registered.terminal_id == TERMINAL_ID
    assert terminal.registration() == nami.Registration(terminal_id=TERMINAL_ID, cash_register_no=CASH_REGISTER)

    assert terminal.start_session().approved

    sale_ref = refs()
    sale = terminal.purchase("10.00", sale_ref)
    assert isinstance(sale, nami.TxnResult)
    assert (sale.approved, sale.response_code, sale.txn_type) == (True, "000", "PURCHASE")
    assert sale.amount == "10.00"
    assert sale.ecr_reference == sale_ref
    assert sale.terminal_id == TERMINAL_ID
    assert len(sale.signature) == 64
    assert sale.rrn and sale.approval_code
    assert sale.masked_pan == "588845******1234"
    assert sale.parsed["rrn"] == sale.rrn
    assert sale.fields[2] == "000"
    assert sale.raw_hex and bytes.fromhex(sale.raw_hex)
    assert terminal.last_ecr_reference() == sale_ref

    copy = terminal.duplicate(sale_ref, refs())
    assert copy.approved and copy.txn_type == "DUPLICATE"
    assert copy.rrn == sale.rrn and copy.amount == "10.00"

    reversal = terminal.reversal(refs())
    assert reversal.approved and reversal.rrn == sale.rrn

    settlement = terminal.reconciliation(refs(), print=False)
    assert settlement.approved and settlement.txn_type == "RECONCILIATION"

    assert terminal.check_status(refs()).approved
    assert terminal.end_session().approved


def test_a_refund_names_its_original_sale(registered, refs):
    sale = registered.purchase("20.00", refs())
    refund = registered.refund("5.00", nami.Original(rrn=sale.rrn), refs())
    assert refund.approved and refund.txn_type == "REFUND"


def test_an_amount_ending_in_51_is_declined_with_116(registered, refs):
    result = registered.purchase("10.51", refs())
    assert result.approved is False
    assert result.response_code == "116"
    assert result.message


def test_transact_sends_any_type_described_as_a_payment_request(registered, refs):
    reference = refs()
    result = registered.transact(nami.PaymentRequest(txn_type="PURCHASE", amount="3.00", ecr_reference_no=reference))
    assert result.approved and result.ecr_reference == reference
    status = registered.transact(nami.PaymentRequest(txn_type="CHECK_STATUS", ecr_reference_no=refs()))
    assert status.approved
    with pytest.raises(nami.NamiError.InvalidInput) as raised:
        registered.transact(
            nami.PaymentRequest(txn_type="REFUND", refund_amount="1.001", rrn_number="000000000001", ecr_reference_no=refs())
        )
    assert raised.value.field == "refundAmount"


def test_cancel_from_another_thread_ends_a_card_wait_promptly(sim, registered, refs):
    sim.card_tap(True)
    reference = refs()
    call = InThread(lambda: registered.purchase("10.00", reference))
    sim.wait_for_card()
    assert registered.is_busy()
    cancelled_at = time.monotonic()
    assert registered.cancel() is True
    call.join()
    assert isinstance(call.error, nami.NamiError.Cancelled), call.error
    assert call.error.ecr_reference == reference
    assert call.ended_at - cancelled_at < 2.0
    assert not registered.is_busy()


def test_a_second_call_during_a_card_wait_is_busy(sim, registered, refs):
    sim.card_tap(True)
    first = InThread(lambda: registered.purchase("10.00", refs()))
    sim.wait_for_card()
    with pytest.raises(nami.NamiError.Busy) as raised:
        registered.purchase("11.00", refs())
    assert raised.value.terminal == f"{sim.host}:{sim.port}"
    sim.tap()
    first.join()
    assert first.error is None and first.result.approved


def test_an_invalid_amount_names_the_amount_field_and_sends_nothing(sim, registered, refs):
    before = sim.state()["requestsReceived"]
    for amount in ["10.001", "ten", "-1", ""]:
        with pytest.raises(nami.NamiError.InvalidInput) as raised:
            registered.purchase(amount, refs())
        assert raised.value.field == "amount"
        assert raised.value.code == "INVALID_AMOUNT"
        assert nami.status_code_of(raised.value.code) == nami.StatusCode.INVALID_AMOUNT
        assert "amount" in raised.value.detail
    assert sim.state()["requestsReceived"] == before


def test_an_invalid_ecr_reference_names_its_field(registered):
    for reference in ["123", "1234567800000A", "123456780000011"]:
        with pytest.raises(nami.NamiError.InvalidInput) as raised:
            registered.purchase("10.00", reference)
        assert raised.value.field == "ecrReferenceNo"
        assert raised.value.code == "INVALID_ECR_REF"


def test_a_bad_cash_register_number_is_refused(terminal):
    with pytest.raises(nami.NamiError.InvalidInput) as raised:
        terminal.register("12")
    assert raised.value.field == "cashRegisterNo"


def test_a_purchase_before_register_needs_registration(terminal, refs):
    with pytest.raises(nami.NamiError.RegisterRequired):
        terminal.purchase("10.00", refs())
    with pytest.raises(nami.NamiError.RegisterRequired):
        terminal.start_session()


def test_a_terminal_that_forgot_its_registration_asks_for_it_again(sim, registered, refs):
    sim.post("/reboot")
    with pytest.raises(nami.NamiError.RegisterRequired):
        registered.purchase("10.00", refs())
    assert registered.registration() is None


def test_no_answer_within_the_deadline_is_a_timeout_carrying_the_reference(sim, refs):
    config = quick_config(card_present_timeout=timedelta(milliseconds=600))
    t = nami.Terminal.tcp(sim.host, sim.port, config)
    t.register(CASH_REGISTER)
    sim.fault("never-answer")
    reference = refs()
    started = time.monotonic()
    with pytest.raises(nami.NamiError.Timeout) as raised:
        t.purchase("10.00", reference)
    assert raised.value.ecr_reference == reference
    assert time.monotonic() - started < 5.0
    # The purchase was carried out: DUPLICATE tells its outcome.
    assert t.duplicate(reference, refs()).approved


def test_a_link_closed_after_the_request_leaves_the_outcome_unknown(sim, registered, refs):
    sim.fault("close-after-request")
    reference = refs()
    with pytest.raises(nami.NamiError.OutcomeUnknown) as raised:
        registered.purchase("10.00", reference)
    assert raised.value.ecr_reference == reference
    assert raised.value.txn_type == "PURCHASE"
    recovered = registered.duplicate(reference, refs())
    assert recovered.approved and recovered.amount == "10.00"


def test_a_closed_port_is_unable_to_connect():
    t = nami.Terminal.tcp("127.0.0.1", closed_port(), quick_config())
    with pytest.raises(nami.NamiError.UnableToConnect):
        t.register(CASH_REGISTER)
    with pytest.raises(nami.NamiError.UnableToConnect):
        t.connect()


def test_bad_settings_are_refused_by_name():
    with pytest.raises(nami.NamiError.InvalidInput) as raised:
        nami.Terminal.tcp("", 2345)
    assert raised.value.field == "host"
    with pytest.raises(nami.NamiError.InvalidInput) as raised:
        nami.Terminal.tcp("127.0.0.1", 2345, nami.TerminalConfig(admin_timeout=timedelta(0)))
    assert raised.value.field == "admin_timeout"
    with pytest.raises(nami.NamiError.InvalidInput) as raised:
        nami.Terminal.serial("/dev/ttyACM0", nami.SerialSettings(baud_rate=1234))
    assert raised.value.field == "baudRate"
    serial = nami.Terminal.serial("/dev/nami-no-such-port", nami.SerialSettings(parity=nami.Parity.EVEN))
    assert serial.key() == "/dev/nami-no-such-port"


class Events(nami.EventListener):
    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    def on_event(self, terminal, event_json):
        with self.lock:
            self.seen.append((terminal, json.loads(event_json)))

    def names(self):
        with self.lock:
            return [event["event"] for _, event in self.seen]


def test_the_listener_sees_each_state_change(sim, terminal, refs):
    events = Events()
    terminal.set_listener(events)
    terminal.register(CASH_REGISTER)
    terminal.purchase("10.00", refs())
    names = events.names()
    for expected in ["connecting", "connected", "requestSent", "registered", "waitingForCard", "responseReceived"]:
        assert expected in names, names
    key = f"{sim.host}:{sim.port}"
    assert all(terminal_key == key and event["terminal"] == key for terminal_key, event in events.seen)
    response = [event for _, event in events.seen if event["event"] == "responseReceived"][-1]
    assert response == {"event": "responseReceived", "responseCode": "000", "approved": True, "terminal": key}
    terminal.set_listener(None)
    count = len(events.seen)
    terminal.check_status(refs())
    assert len(events.seen) == count


def test_a_listener_that_raises_never_breaks_the_call(terminal, refs):
    class Broken(nami.EventListener):
        def on_event(self, terminal, event_json):
            raise RuntimeError("screen is gone")

    terminal.set_listener(Broken())
    assert terminal.register(CASH_REGISTER).approved
    assert terminal.purchase("1.00", refs()).approved


def test_cancel_from_the_listener_ends_the_card_wait(sim, registered, refs):
    class CancelOnCard(nami.EventListener):
        def on_event(self, terminal, event_json):
            if json.loads(event_json)["event"] == "waitingForCard":
                registered.cancel()

    sim.card_tap(True)
    registered.set_listener(CancelOnCard())
    with pytest.raises(nami.NamiError.Cancelled):
        registered.purchase("10.00", refs())


class Lines(nami.LogSink):
    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()

    def log(self, level, target, message):
        with self.lock:
            self.lines.append((level, target, message))


def test_the_log_hook_receives_the_library_log_lines(registered, refs):
    lines = Lines()
    assert nami.set_log_sink(lines, nami.LogLevel.TRACE) is True
    try:
        registered.purchase("10.00", refs())
    finally:
        nami.set_log_sink(None)
    assert lines.lines, "no log line"
    levels = {level for level, _, _ in lines.lines}
    assert nami.LogLevel.TRACE in levels
    assert all(target.startswith("nami") for _, target, _ in lines.lines)
    frames = [message for _, _, message in lines.lines if "frame=" in message]
    assert frames, lines.lines
    count = len(lines.lines)
    registered.check_status(refs())
    assert len(lines.lines) == count


def test_list_serial_ports_returns_a_list():
    ports = nami.list_serial_ports()
    assert isinstance(ports, list)
    assert all(isinstance(p, nami.SerialPort) and p.device_id for p in ports)


FULL_PAN = "5888451712711234"


def test_a_full_card_number_from_the_terminal_never_reaches_the_application():
    from conftest import Sim

    sim = Sim("--full-pan")
    lines, events = Lines(), Events()
    try:
        t = nami.Terminal.tcp(sim.host, sim.port, quick_config())
        t.set_listener(events)
        assert nami.set_log_sink(lines, nami.LogLevel.TRACE)
        t.register(CASH_REGISTER)
        sale = t.purchase("10.00", "12345678990001")
        copy = t.duplicate("12345678990001", "12345678990002")
    finally:
        nami.set_log_sink(None)
        sim.stop()
    assert sale.masked_pan == "588845******1234" and copy.masked_pan == "588845******1234"
    for result in (sale, copy):
        text = " ".join([*result.fields, *result.parsed.values(), result.raw_hex, bytes.fromhex(result.raw_hex).decode("latin-1")])
        assert FULL_PAN not in text
    assert all(FULL_PAN not in message and FULL_PAN.encode().hex() not in message for _, _, message in lines.lines)
    assert all(FULL_PAN not in json.dumps(event) for _, event in events.seen)


def test_the_status_codes_are_the_librarys_whole_list():
    # nami.StatusCode is generated from nami-sdk's StatusCode (nami-ffi's uniffi_api/status.rs
    # does not compile without every code): the enum this package holds is the library's list,
    # in its order, each code with its own wire spelling that parses back.
    members = list(nami.StatusCode)
    assert members == nami.status_codes()
    spellings = [nami.status_code_wire(code) for code in members]
    assert len(set(spellings)) == len(spellings) > 40
    for code, wire in zip(members, spellings):
        assert nami.status_code_of(wire) == code
    assert nami.status_code_wire(nami.StatusCode.TERMINAL_BUSY) == "TERMINAL_BUSY"
    assert nami.status_code_wire(nami.StatusCode.CABLE_DISCONNECTED) == "CableDisconnected"
    assert nami.status_code_of("terminal_busy") is None, "case matters on the wire"
