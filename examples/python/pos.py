"""A minimal point-of-sale flow with the `nami` Python package.

    python examples/python/pos.py [HOST] [PORT]

Registers with the terminal, opens a session, sells SAR 10.00, prints the receipt fields, and
closes the day. Start a simulated terminal first with `target/debug/nami-sim --listen
127.0.0.1:8888` (see examples/python/README.md).
"""

import itertools
import json
import sys
import time

import nami

CASH_REGISTER = "12345678"


class CashierScreen(nami.EventListener):
    """Shows the terminal's state changes, as a POS screen would."""

    def on_event(self, terminal, event_json):
        event = json.loads(event_json)
        if event["event"] == "waitingForCard":
            print("  screen: please present your card")
        elif event["event"] == "responseReceived":
            print(f"  screen: terminal answered {event['responseCode']}")


_sequence = itertools.count(int(time.time()) % 900_000)


def new_reference():
    """A new 14-digit ECR reference: the cash register number and six digits. A real POS keeps
    its counter across runs (the middleware's `next_ecr_reference` does that)."""
    return f"{CASH_REGISTER}{next(_sequence) % 1_000_000:06d}"


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8888
    terminal = nami.Terminal.tcp(host, port)
    terminal.set_listener(CashierScreen())

    registered = terminal.register(CASH_REGISTER)
    print(f"registered: terminal ID {registered.terminal_id}")
    terminal.start_session()

    reference = new_reference()
    try:
        sale = terminal.purchase("10.00", reference)
    except nami.NamiError.OutcomeUnknown as unknown:
        # The link broke after the request was sent: ask the terminal what became of it.
        print(f"outcome of {unknown.ecr_reference} unknown; asking the terminal")
        sale = terminal.duplicate(unknown.ecr_reference, new_reference())
    except nami.NamiError.Timeout as timeout:
        if timeout.ecr_reference is None:
            raise
        sale = terminal.duplicate(timeout.ecr_reference, new_reference())

    if sale.approved:
        print(f"approved: SAR {sale.amount}, card {sale.masked_pan}, RRN {sale.rrn}, approval {sale.approval_code}")
    else:
        print(f"declined: {sale.response_code} {sale.message}")

    try:
        terminal.purchase("10.001", new_reference())
    except nami.NamiError.InvalidInput as bad:
        print(f"refused before sending: {bad.field}: {bad.detail}")

    day = terminal.reconciliation(new_reference())
    print(f"reconciliation: {day.response_code} {day.message}")
    terminal.end_session()
    terminal.disconnect()


if __name__ == "__main__":
    main()
