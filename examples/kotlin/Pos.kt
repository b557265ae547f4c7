// A minimal point-of-sale flow with the Kotlin bindings (package `sa.nami`).
//
//     java -cp nami-kotlin.jar:pos.jar:jna.jar:kotlin-stdlib.jar sa.nami.examples.PosKt [HOST] [PORT]
//
// Registers with the terminal, opens a session, sells SAR 10.00, prints the receipt fields, and
// closes the day. Start a simulated terminal first with `target/debug/nami-sim --listen
// 127.0.0.1:8888` (see examples/kotlin/README.md).
package sa.nami.examples

import sa.nami.EventListener
import sa.nami.NamiException
import sa.nami.Terminal
import sa.nami.TxnResult

const val CASH_REGISTER = "12345678"

/** Shows the terminal's state changes, as a POS screen would. */
class CashierScreen : EventListener {
    override fun onEvent(terminal: String, eventJson: String) {
        when {
            "\"event\":\"waitingForCard\"" in eventJson -> println("  screen: please present your card")
            "\"event\":\"responseReceived\"" in eventJson -> println("  screen: the terminal answered")
        }
    }
}

private var sequence = (System.currentTimeMillis() / 1000 % 900_000).toInt()

/** A new 14-digit ECR reference. A real POS keeps its counter across runs (the middleware's
 *  `nextEcrReference` does that). */
fun newReference(): String = CASH_REGISTER + "%06d".format(sequence++ % 1_000_000)

fun main(args: Array<String>) {
    val host = args.getOrElse(0) { "127.0.0.1" }
    val port = args.getOrElse(1) { "8888" }.toUShort()
    Terminal.tcp(host, port).use { terminal ->
        terminal.setListener(CashierScreen())
        val registered = terminal.register(CASH_REGISTER)
        println("registered: terminal ID ${registered.terminalId}")
        terminal.startSession()

        val sale: TxnResult = try {
            terminal.purchase("10.00", newReference())
        } catch (unknown: NamiException.OutcomeUnknown) {
            // The link broke after the request was sent: ask the terminal what became of it.
            println("outcome of ${unknown.ecrReference} unknown; asking the terminal")
            terminal.duplicate(unknown.ecrReference, newReference())
        }
        if (sale.approved) {
            println("approved: SAR ${sale.amount}, card ${sale.maskedPan}, RRN ${sale.rrn}, approval ${sale.approvalCode}")
        } else {
            println("declined: ${sale.responseCode} ${sale.message}")
        }

        try {
            terminal.purchase("10.001", newReference())
        } catch (bad: NamiException.InvalidInput) {
            println("refused before sending: ${bad.field}: ${bad.detail}")
        }

        val day = terminal.reconciliation(newReference())
        println("reconciliation: ${day.responseCode} ${day.message}")
        terminal.endSession()
    }
}
